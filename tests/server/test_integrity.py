"""Every answer belongs to a stored submission, on both databases (server.integrity).

The rule used to be a foreign key; it is now checked once per statement. These tests show
it still refuses what the foreign key refused.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from server.extensions import db
from server.models import Answer, Submission
from tests.conftest import mutation, visit


@pytest.fixture
def stored_visit(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    data = visit(site)
    response = sync(token, [mutation(data)])
    assert response.get_json()["results"][0]["status"] == "applied"
    return data["id"], area, site


def answer_row(submission_id: str, area, site, line_key="extra_line") -> dict:
    return {"submission_id": submission_id, "line_key": line_key, "theme": "", "grade": "A", "area_id": area.id,
            "site_id": site.id, "kind": "street", "observed_at": datetime(2026, 11, 1, tzinfo=timezone.utc)}


def answers_of(submission_id: str) -> int:
    return db.session.execute(select(func.count()).select_from(Answer).where(Answer.submission_id == submission_id)).scalar_one()


def test_an_answer_without_its_submission_is_refused(stored_visit):
    submission_id, area, site = stored_visit
    with pytest.raises(IntegrityError):
        db.session.execute(insert(Answer.__table__), [answer_row(submission_id, area, site),
                                                      answer_row("no-such-visit", area, site)])
    db.session.rollback()
    assert answers_of(submission_id) == 12  # the statement's good row went too


def test_answers_of_a_stored_submission_are_accepted(stored_visit):
    submission_id, area, site = stored_visit
    db.session.execute(insert(Answer.__table__), [answer_row(submission_id, area, site)])
    db.session.commit()
    assert answers_of(submission_id) == 13


def test_an_answer_cannot_be_moved_to_a_missing_submission(stored_visit):
    submission_id, _area, _site = stored_visit
    with pytest.raises(IntegrityError):
        db.session.execute(update(Answer).where(Answer.submission_id == submission_id).values(submission_id="no-such-visit"))
    db.session.rollback()
    assert answers_of(submission_id) == 12


def test_a_submission_with_answers_cannot_be_deleted_or_renumbered(stored_visit):
    submission_id, _area, _site = stored_visit
    with pytest.raises(IntegrityError):
        db.session.execute(delete(Submission).where(Submission.id == submission_id))
    db.session.rollback()
    with pytest.raises(IntegrityError):
        db.session.execute(update(Submission).where(Submission.id == submission_id).values(id="renumbered"))
    db.session.rollback()
    assert db.session.get(Submission, submission_id) is not None
    assert answers_of(submission_id) == 12


def test_reviewing_a_submission_still_works(stored_visit):
    """The update guard looks only at ids: a review's update passes."""
    submission_id, _area, _site = stored_visit
    db.session.execute(update(Submission).where(Submission.id == submission_id).values(review_status="accepted"))
    db.session.commit()
    assert db.session.get(Submission, submission_id).review_status == "accepted"
