import os
import time


def main():
    while not os.path.exists("feed.ready"):
        time.sleep(0.1)
    print("watching SPY")


if __name__ == "__main__":
    main()
