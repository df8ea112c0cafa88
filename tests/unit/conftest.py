from tests.unit.session_fixtures import clock, make_session, store

__all__ = ["clock", "make_session", "store"]
