"""What the test suite leaves on disk: a CI machine's disk also holds the venv (~6 GB of torch)."""


def test_passing_tests_leave_no_temporary_folders(pytestconfig):
    # Each run of a tiny ResNet-18 writes ~130 MB checkpoints; with pytest's default ("all", the
    # last three sessions kept) the suite left 7 GB per session and 21 GB in all, which filled a
    # CI disk before pip could install torch. "failed" keeps only the folders of failing tests.
    assert pytestconfig.getini("tmp_path_retention_policy") == "failed"
