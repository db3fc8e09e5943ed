from gateway.proto import codegen


def test_committed_stubs_match_what_protos_generate() -> None:
    assert codegen.stale_files() == [], "run: python -m gateway.proto.codegen"
