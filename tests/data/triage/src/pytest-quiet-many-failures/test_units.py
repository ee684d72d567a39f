from units import human_size, parse_size


def test_parse_plain():
    assert parse_size("512") == 512


def test_parse_kb():
    assert parse_size("2KB") == 2048


def test_parse_mb_with_space():
    assert parse_size("1.5 MB") == 1572864


def test_parse_gib():
    assert parse_size("1GiB") == 1073741824


def test_human_bytes():
    assert human_size(512) == "512 B"


def test_human_kb():
    assert human_size(2048) == "2.0 KB"
