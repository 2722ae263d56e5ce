import base64
import os
import stat

from identity.keys.encryption import development_key_encryption_key


def test_rotate_keys_publishes_a_new_key_and_then_reports_it_pending(
    run_identity, tmp_path
):
    env = {
        "IDENTITY_DATABASE_URL": f"sqlite:///{tmp_path / 'identity.db'}",
        "IDENTITY_KEY_ENCRYPTION_KEY": base64.b64encode(b"q" * 32).decode(),
    }
    assert run_identity("migrate", env=env).returncode == 0

    first = run_identity("rotate-keys", env=env)
    second = run_identity("rotate-keys", env=env)
    third = run_identity("rotate-keys", env=env)

    # The first run creates the initial key (it signs at once) and schedules
    # the next; the others find that next key pending.
    assert first.returncode == 0, first.stderr
    outcome = [run.stdout.strip().splitlines()[-1] for run in (first, second, third)]
    assert outcome[0].startswith("new signing key ")
    assert "published; it signs from 20" in outcome[0]
    assert outcome[1].startswith("a new key is already pending: ")
    assert outcome[2] == outcome[1]


def test_postgresql_without_a_kek_stops_start_up_naming_the_variable(run_identity):
    finished = run_identity(
        env={"IDENTITY_DATABASE_URL": "postgresql://identity@127.0.0.1:1/identity"}
    )

    assert finished.returncode == 2
    assert finished.stderr.strip() == (
        "identity: invalid configuration: IDENTITY_KEY_ENCRYPTION_KEY: Value error, "
        "required with PostgreSQL: base64 of 32 random bytes "
        "(openssl rand -base64 32) (given nothing)"
    )


def test_a_bad_kek_is_refused_without_echoing_it(run_identity):
    finished = run_identity(
        env={"IDENTITY_KEY_ENCRYPTION_KEY": "c2hvcnQ="}  # base64 of b"short"
    )

    assert finished.returncode == 2
    assert finished.stderr.strip() == (
        "identity: invalid configuration: IDENTITY_KEY_ENCRYPTION_KEY: Value error, "
        "expected 32 bytes once decoded, got 5 (given a value of 8 characters, not shown)"
    )


def test_sqlite_without_a_kek_gets_a_private_development_key(tmp_path):
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    first = development_key_encryption_key(url)
    again = development_key_encryption_key(url)

    path = tmp_path / "identity.db.kek"
    assert first == again
    assert first is not None
    assert len(base64.b64decode(first)) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
