import pytest
from sqlalchemy import select

from integration.store.schema import api_token
from integration.store.tokens import DuplicateTokenName, TokenRepository


def test_token_lifecycle_stores_only_a_hash(db):
    with db.writer() as conn:
        token = TokenRepository(conn).create("ehr-feed", "clinic")
    with db.reader() as conn:
        stored = conn.execute(select(api_token.c.token_hash)).scalar_one()
        assert token not in stored and len(stored) == 64
        owner = TokenRepository(conn).verify(token)
        assert (owner.name, owner.role) == ("ehr-feed", "clinic")
        assert TokenRepository(conn).verify(token + "x") is None
    with db.writer() as conn:
        assert TokenRepository(conn).revoke("ehr-feed")
        assert not TokenRepository(conn).revoke("ehr-feed")
    with db.reader() as conn:
        assert TokenRepository(conn).verify(token) is None


def test_names_are_unique_and_roles_checked(db):
    with db.writer() as conn:
        TokenRepository(conn).create("a", "admin")
    with db.writer() as conn, pytest.raises(DuplicateTokenName):
        TokenRepository(conn).create("a", "clinic")
    with db.writer() as conn, pytest.raises(ValueError, match="role"):
        TokenRepository(conn).create("b", "root")
