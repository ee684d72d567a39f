from settings import load


def test_load(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("interval: 30\nsymbols: [X]\n")
    s = load(path)
    assert s.interval == 30 and s.symbols == ["X"]


def test_load_repo_file():
    assert load("settings.yaml").symbols == ["AAPL", "MSFT"]
