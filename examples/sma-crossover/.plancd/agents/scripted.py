"""A scripted agent: it replays recorded work instead of asking a model, so that this example
runs offline and gives the same result every time. plancd labels its results `scripted`.

It reads the task from $PLANCD_TASK and copies .plancd/scripted/<task>/attempt-<n>/ (or
.plancd/scripted/<task>/default/ when there is no recording for this attempt) into the
workspace."""
import json
import os
import shutil
import sys


def main():
    with open(os.environ["PLANCD_TASK"], encoding="utf-8") as f:
        task = json.load(f)
    root = os.path.join(".plancd", "scripted", task["task_id"])
    for name in (f"attempt-{task['attempt']}", "default"):
        source = os.path.join(root, name)
        if os.path.isdir(source):
            break
    else:
        sys.exit(f"scripted agent: nothing recorded for {task['task_id']}")
    print(f"scripted agent: {task['role']} on {task['workflow_id']}/{task['task_id']}, attempt {task['attempt']}")
    for folder, _, files in os.walk(source):
        for name in sorted(files):
            path = os.path.relpath(os.path.join(folder, name), source)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            shutil.copyfile(os.path.join(folder, name), path)
            print(f"  wrote {path}")


if __name__ == "__main__":
    main()
