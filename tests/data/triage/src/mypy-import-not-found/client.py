import httpx


def latest_release(repo: str) -> str:
    resp = httpx.get(f"https://api.example/repos/{repo}/releases/latest", timeout=10)
    resp.raise_for_status()
    tag: str = resp.json()["tag_name"]
    return tag
