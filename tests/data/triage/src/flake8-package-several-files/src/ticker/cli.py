import sys


def main(argv=None):
    argv = argv or sys.argv[1:]
    for path in argv:
        with open(path) as f:
            for line in f:
                print(line.strip()) 
    return 0
