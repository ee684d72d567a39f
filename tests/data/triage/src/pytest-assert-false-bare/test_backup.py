from backup import backup


def test_backup_runs():
    if not backup("data", "out"):
        assert False
