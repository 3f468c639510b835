"""Export job claims: one holder at a time, a lapsed lease can be taken over, a stale holder cannot finish."""

from datetime import UTC, datetime, timedelta

from integration.store.exports import ExportFile, ExportJobRepository

LEASE = timedelta(seconds=60)


def _job(db, now):
    with db.writer() as conn:
        ExportJobRepository(conn).create(
            id="job-1",
            client_id="c1",
            kind="system",
            types="Patient",
            output_format="application/fhir+ndjson",
            request_url="http://127.0.0.1:8000/fhir/$export",
            transaction_time=now,
            seq_high=0,
            created_at=now,
            updated_at=now,
        )


def test_claims_leases_and_completion(db):
    now = datetime.now(UTC)
    _job(db, now)
    with db.writer() as conn:
        repo = ExportJobRepository(conn)
        assert repo.active_for("c1").status == "queued"
        assert repo.claim("job-1", "w1", now, LEASE)
        assert not repo.claim("job-1", "w2", now, LEASE)  # w1's lease is live
        later = now + LEASE + timedelta(seconds=1)
        assert repo.stale(later, timedelta(seconds=30)) == ["job-1"]
        assert repo.claim("job-1", "w2", later, LEASE)  # w1 died
        assert not repo.renew("job-1", "w1", later, LEASE, "x")
        files = [ExportFile("Patient-1.ndjson", "output", "Patient", 3, 100)]
        assert not repo.complete("job-1", "w1", files, later, later + LEASE)
        assert repo.complete("job-1", "w2", files, later, later + LEASE)
        assert repo.files("job-1") == files
        assert repo.active_for("c1") is None
        assert repo.finished_before(later + LEASE * 2, timedelta(hours=1)) == ["job-1"]
        repo.delete(["job-1"])
        assert repo.get("job-1") is None and repo.files("job-1") == []
