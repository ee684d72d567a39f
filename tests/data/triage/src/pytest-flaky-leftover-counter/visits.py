import json, os

PATH = ".visits"

def visit():
    count = int(open(PATH).read()) if os.path.exists(PATH) else 0
    count += 1
    with open(PATH, "w") as f:
        f.write(str(count))
    return count
