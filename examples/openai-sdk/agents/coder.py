"""A minimal coding agent: asks the model for each output file and writes what it says.

It reads the task from $PLANCD_TASK and talks to whatever OPENAI_BASE_URL and OPENAI_API_KEY
name; under plancd those are the attempt's gateway and token, never the real key.
"""
import json
import os
import re

from openai import OpenAI

task = json.load(open(os.environ["PLANCD_TASK"]))
client = OpenAI()
model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

for path in task["outputs"]:
    prompt = f"{task['title']}\n\n{task['description']}\n\nWrite the file {path}. Reply with its content only."
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    fenced = re.search(r"```[a-zA-Z]*\n(.*?)```", text, re.S)
    with open(path, "w") as f:
        f.write(fenced.group(1) if fenced else text)
    print(f"wrote {path} ({len(text)} characters)")
