"""Demo data faithful to the seed: one neighbourhood, its Deal, its forms, and months of visits.

Visits go through the same push path as a phone's, so the demo exercises real ingest.
"""

from __future__ import annotations

import random
import secrets
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from server import operations, push
from server.auth import hash_password
from server.extensions import db
from server.models import Area, Device, FormVersion, Person
from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form
from server.seed_translations import (
    AGREEMENT_TRANSLATIONS,
    CHECKLIST_TRANSLATIONS,
    MYSTERY_SHOP_TRANSLATIONS,
    OLD_STREET_TRANSLATIONS,
    STREET_TRANSLATIONS,
)
from sync.protocol import payload_hash

DEMO_AREA = {"slug": "millbrook", "name": "Millbrook",
             "description": "Terraced streets, a park and a parade of shops between the canal and the station."}
COORDINATOR_EMAIL = "coordinator@kerbside.example"
PARTNER_EMAIL = "cleansing@kerbside.example"

STREETS = [
    "Canal Street", "Station Road", "Mill Lane", "Park Avenue", "Chapel Street", "Victoria Terrace",
    "Albert Road", "Queen Street", "Church Walk", "Wharf Close", "Foundry Street", "Bridge Street",
    "Orchard Grove", "School Lane", "Market Parade", "Hope Street", "Cotton Row", "Spinners Way",
    "Weavers Court", "Lock Keepers Walk", "Railway View", "Union Street", "Miners Row", "Ash Grove",
    "Beech Avenue", "Millbrook Park", "Back Canal Street (alley)", "Library Square", "Co-op Parade",
    "Towpath (Lock 4 to Lock 6)",
]

GRADE_LINES = [line["key"] for section in STREET_FORM["sections"] for line in section["lines"]]


def load_demo(*, months: int = 6, seed: int = 7, coordinator_password: str | None = None) -> dict:
    """Create the demo neighbourhood if it is not there; return what a newcomer needs to know."""
    rng = random.Random(seed)
    area = db.session.execute(select(Area).where(Area.slug == DEMO_AREA["slug"])).scalar_one_or_none()
    if area is None:
        area = _build(rng, months)
    password = coordinator_password or secrets.token_urlsafe(9)
    coordinator = db.session.execute(select(Person).where(Person.email == COORDINATOR_EMAIL)).scalar_one()
    coordinator.password_hash = hash_password(password)
    partner = db.session.execute(select(Person).where(Person.email == PARTNER_EMAIL)).scalar_one()
    partner.password_hash = hash_password(password)
    # No name: whoever joins with these gives their own (a placeholder would greet them "Hello, New street rep").
    invite = operations.issue_invite(area, "street_rep", created_by=coordinator)
    shopper_invite = operations.issue_invite(area, "mystery_shopper", created_by=coordinator)
    details = {"area": area.slug, "email": COORDINATOR_EMAIL, "partner_email": PARTNER_EMAIL, "password": password,
               "invite": invite, "shopper_invite": shopper_invite}
    db.session.commit()
    return details


def _build(rng: random.Random, months: int) -> Area:
    operations.init_state()
    area = operations.create_area(**DEMO_AREA)
    sites = operations.create_sites(area, [
        {"name": name, "lat": round(53.540 + rng.uniform(-0.008, 0.008), 5),
         "lng": round(-2.630 + rng.uniform(-0.012, 0.012), 5)}
        for name in STREETS
    ])
    # Mystery shoppers test services where residents meet them; checklists cover the whole area.
    desk, phone, online, whole_area = operations.create_sites(area, [
        {"name": "Town hall front desk", "lat": 53.5451, "lng": -2.6325},
        {"name": "Council contact centre (phone)"},
        {"name": "Council website"},
        {"name": "Millbrook (whole area)"},
    ])
    service_points = {"in_person": desk, "phone": phone, "online": online}
    # The Deal and the forms come with Welsh and Urdu translations of every text (seed_translations.py).
    agreement = operations.draft_agreement_version("millbrook-deal", area, AGREEMENT,
                                                   translations=AGREEMENT_TRANSLATIONS)
    operations.publish_agreement_version(agreement)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=30 * months)
    retire_at = start + (now - start) * 0.4
    # Version 1 of the street form is retired; version 2 (the same lines, reworded
    # instructions) is current, so the demo shows both in the data. The versions are dated
    # as if published when the months of visits began: a visit dated long before its form
    # version existed is refused, as a phone's would be.
    old_street = operations.draft_form_version("street", {**STREET_FORM, "instructions": "Place an X in the correct box."},
                                               translations=OLD_STREET_TRANSLATIONS)
    _publish_as_of(old_street, start - timedelta(days=1))
    street = operations.draft_form_version("street", STREET_FORM, translations=STREET_TRANSLATIONS)
    _publish_as_of(street, retire_at - timedelta(days=1))
    checklist = operations.draft_form_version("checklist", checklist_form(AGREEMENT), translations=CHECKLIST_TRANSLATIONS)
    _publish_as_of(checklist, start - timedelta(days=1))
    shop = operations.draft_form_version("mystery_shop", mystery_shop_form(AGREEMENT),
                                         translations=MYSTERY_SHOP_TRANSLATIONS)
    _publish_as_of(shop, start - timedelta(days=1))

    coordinator = operations.create_person("Sam Coordinator", email=COORDINATOR_EMAIL, roles=[("coordinator", area)])
    operations.create_person("Street Cleansing Team", email=PARTNER_EMAIL, organisation="Street cleansing",
                             roles=[("partner", area)])
    reps = [_volunteer(f"Street rep {n}", "street_rep", area) for n in ("Ann", "Bilal", "Carys", "Dev")]
    shoppers = [_volunteer(f"Mystery shopper {n}", "mystery_shopper", area) for n in ("Eve", "Femi")]
    db.session.commit()

    visits = _street_visits(rng, sites, reps, start, now, retire_at)
    visits += _mystery_shops(rng, shoppers, service_points, start, now)
    visits += _checklists(rng, reps, whole_area, start, now)
    for device, person, batch in _batches(visits):
        results = push.push(device, person, batch, {area.id}, operations.roles_by_area(person))
        refused = [r for r in results if r["status"] != "applied"]
        if refused:  # the demo is made to be accepted whole: anything else is a bug in it
            raise RuntimeError(f"the demo's visits were refused: {refused[:3]}")
    operations.retire_form_version(old_street)
    _actions(rng, area, sites, coordinator)
    db.session.commit()
    return area


def _publish_as_of(version: FormVersion, moment: datetime):
    """Publish a form version as though it had been published at `moment`."""
    operations.publish_form_version(version)
    version.published_at = moment
    db.session.flush()


def _volunteer(name: str, role: str, area: Area) -> tuple[Device, Person]:
    person = operations.create_person(name, roles=[(role, area)])
    device = Device(person_id=person.id, name=f"{name}'s phone", token_hash=secrets.token_hex(32))
    db.session.add(device)
    db.session.flush()
    return device, person


def _mutation(data: dict, seq: int) -> dict:
    return {"mid": str(uuid.uuid4()), "seq": seq, "type": "submission.create",
            "payload_hash": payload_hash(data), "data": data}


def _street_visits(rng, sites, reps, start, now, retire_at):
    # Each site has its own character: a few hotspots, a few that worsen over the months.
    tendency = {site.id: rng.choice([0, 0, 0, 1, 1, 2]) for site in sites}
    worsening = {site.id for site in rng.sample(sites, 5)}
    visits = []
    for site in sites:
        moment = start + timedelta(days=rng.uniform(0, 20))
        while moment < now:
            progress = (moment - start) / (now - start)
            base = tendency[site.id] + (2 * progress if site.id in worsening else 0)
            answers = {}
            for key in GRADE_LINES:
                level = max(0, min(3, round(rng.gauss(base * 0.6, 0.8))))
                answers[key] = {"grade": "ABCD"[level]}
                if level >= 2 and rng.random() < 0.5:
                    answers[key]["note"] = rng.choice(NOTES.get(key, ["Getting worse."]))
            device, person = rng.choice(reps)
            version = 1 if moment < retire_at else 2
            data = {"id": str(uuid.uuid4()), "form": {"id": "street", "version": version}, "site_id": site.id,
                    "observed_at": moment.isoformat(), "answers": answers,
                    "location": {"lat": site.lat, "lng": site.lng, "accuracy_m": round(rng.uniform(4, 25), 1)}}
            visits.append((device, person, data))
            moment += timedelta(days=rng.uniform(12, 30))
    return visits


NOTES = {
    "litter": ["Bins by the shops overflowing again.", "Takeaway boxes along the fence."],
    "dog_fouling": ["Same spot by the school gate every morning."],
    "fly_tipping": ["Mattress and bags dumped behind the garages.", "Fridge left in the alley."],
    "graffiti": ["New tags on the bus shelter.", "Shutters on the parade covered."],
    "groups_loitering": ["Group gathering by the bench after 9pm, shouting."],
    "street_lighting": ["Two lamps out near the footbridge."],
    "noise": ["Music from the flats until 2am at the weekend."],
}


def _mystery_shops(rng, shoppers, service_points, start, now):
    visits = []
    moment = start + timedelta(days=3)
    while moment < now:
        device, person = rng.choice(shoppers)
        channel, site = rng.choice(list(service_points.items()))
        answered = moment + timedelta(minutes=rng.choice([1, 2, 3, 8, 25]))
        answers = {
            "scenario": {"value": rng.choice(SCENARIOS)},
            "channel": {"value": channel},
            "contacted_at": {"value": moment.isoformat()},
            "answered_at": {"value": answered.isoformat()},
            "std_answer_calls": {"value": "kept" if answered - moment <= timedelta(minutes=2) else "not_kept"},
            "std_missed_bin": {"value": rng.choice(["kept", "kept", "partly", "not_kept"])},
            "treated_well": {"value": rng.choice(["yes", "yes", "partly", "no"])},
            "what_happened": {"value": rng.choice(["Polite and quick; given a reference number.",
                                                   "Passed between two departments before anyone could help.",
                                                   "Online form worked, acknowledgement came next day."])},
        }
        visits.append((device, person, {"id": str(uuid.uuid4()), "form": {"id": "mystery_shop", "version": 1},
                                        "site_id": site.id, "observed_at": moment.isoformat(), "answers": answers}))
        moment += timedelta(days=rng.uniform(6, 14))
    return visits


SCENARIOS = ["Report a missed bin", "Report fly-tipping", "Report graffiti", "Report a street light fault"]


def _checklists(rng, reps, whole_area, start, now):
    visits = []
    keys = [line["key"] for section in checklist_form(AGREEMENT)["sections"] for line in section["lines"]]
    moment = start + timedelta(days=10)
    while moment < now:
        device, person = rng.choice(reps)
        answers = {key: {"value": rng.choice(["kept", "kept", "partly", "not_kept", "cant_tell"])} for key in keys}
        visits.append((device, person, {"id": str(uuid.uuid4()), "form": {"id": "checklist", "version": 1},
                                        "site_id": whole_area.id, "observed_at": moment.isoformat(),
                                        "answers": answers}))
        moment += timedelta(days=rng.uniform(20, 40))
    return visits


def _batches(visits):
    """Group visits per device into pushes of 100, oldest first, as phones would send them."""
    by_device: dict = {}
    for device, person, data in sorted(visits, key=lambda v: v[2]["observed_at"]):
        by_device.setdefault(device.id, (device, person, []))[2].append(data)
    for device, person, items in by_device.values():
        for start in range(0, len(items), 100):
            chunk = items[start:start + 100]
            yield device, person, [_mutation(data, start + n) for n, data in enumerate(chunk)]


def _actions(rng, area, sites, coordinator):
    samples = [
        ("Clear fly-tipping behind the garages", "Street cleansing", "done", None,
         "Cleared within 3 days; CCTV sign put up."),
        ("Replace two street lights by the footbridge", "Street lighting", "in_progress", None,
         "Parts ordered; fitting booked."),
        ("Remove graffiti from the bus shelter", "Street cleansing", "acknowledged", None, ""),
        ("Install a second litter bin on the parade", "Street cleansing", "not_doing",
         "The parade already has two bins emptied daily; we will empty them twice on Saturdays instead.", ""),
        ("Patrol the park benches on Friday nights", "Police", "open", None, ""),
    ]
    for title, assigned, status, reason, note in samples:
        site = rng.choice(sites)
        action = operations.raise_action(area, title, created_by=coordinator, site=site, assigned_to=assigned)
        path = {"open": [], "acknowledged": ["acknowledged"], "in_progress": ["acknowledged", "in_progress"],
                "done": ["acknowledged", "in_progress", "done"], "not_doing": ["not_doing"]}[status]
        for step in path:
            patch = {"status": step}
            if step == "not_doing":
                patch["reason"] = reason
            if step == status and note:
                patch["public_note"] = note
            operations.update_action(action, patch)
