import re

def tokenize(text):
    return re.findall(r"[A-Za-z']+", text)
