import mediaflow.producers.webhook


def test_the_package_exports_exactly_its_public_names_sorted() -> None:
    assert mediaflow.producers.webhook.__all__ == sorted(mediaflow.producers.webhook.__all__)
    assert set(mediaflow.producers.webhook.__all__) == {
        "AsyncProducer",
        "Endpoints",
        "OutgoingRecord",
        "Receiver",
        "Rejected",
        "TenantSource",
        "authenticate",
        "build_record",
        "build_app",
        "main",
        "presented_token",
        "record_key",
        "serve",
        "traceparent",
    }
