"""The agreement and forms of the seed (`shared/seeds/002_*`), as Kerbside definitions.

The Deal's *our part* and *your part* are the seed's own words; the monitoring form's
first line is the seed's "Groups loitering and/or disorderly behaviour (NI 17)" with its
four descriptors, and the other lines follow the same pattern for the issues reps grade.
"""

GRADE_MEANINGS = {
    "A": "No problem at all",
    "B": "A bit of an issue but level is acceptable",
    "C": "Problem becoming unacceptable",
    "D": "There is a really big issue which is unacceptable",
}


def _grade(key, label, a, b, c, d):
    return {"key": key, "type": "grade", "label": label, "grades": {"A": a, "B": b, "C": c, "D": d}}


STREET_FORM = {
    "kind": "street",
    "title": "Neighbourhood Agreement Monitoring Form",
    "instructions": "Choose one grade for each line (only one per line).",
    "scale": GRADE_MEANINGS,
    "sections": [
        {
            "theme": "Peace and Quiet",
            "lines": [
                _grade(
                    "groups_loitering",
                    "Groups loitering and/or disorderly behaviour (NI 17)",
                    "No disorderly behaviour or groups gathering",
                    "Small groups gathering but acceptable behaviour",
                    "Large groups gathering regularly engaging in rowdy and noisy behaviour",
                    "Substantial disturbance including violence, rowdy, noisy and criminal behaviour",
                ),
                _grade(
                    "noise",
                    "Noise",
                    "Quiet; no noise beyond everyday living",
                    "Some noise now and then, but tolerable",
                    "Regular loud music, shouting or machinery disturbing residents",
                    "Constant or late-night noise that stops people sleeping or using their homes",
                ),
                _grade(
                    "street_lighting",
                    "Street lighting",
                    "All street lights working",
                    "One light out, the street is still lit",
                    "Several lights out, leaving dark stretches",
                    "Most lights out; the street is dark and feels unsafe",
                ),
                _grade(
                    "abandoned_vehicles",
                    "Abandoned vehicles",
                    "No abandoned vehicles",
                    "A vehicle that may be abandoned but is not causing a problem",
                    "An abandoned vehicle causing an obstruction or eyesore",
                    "Burnt-out, vandalised or dangerous abandoned vehicles",
                ),
            ],
        },
        {
            "theme": "Green and Clean",
            "lines": [
                _grade(
                    "litter",
                    "Litter",
                    "No litter",
                    "A few items of litter",
                    "Litter building up along the street and in corners",
                    "Heavy litter everywhere; bins overflowing",
                ),
                _grade(
                    "dog_fouling",
                    "Dog fouling",
                    "No dog fouling",
                    "One or two instances",
                    "Dog fouling in several places on paths or grass",
                    "Widespread dog fouling; paths are unpleasant to use",
                ),
                _grade(
                    "fly_tipping",
                    "Fly-tipping",
                    "No fly-tipping",
                    "A single small bag or item dumped",
                    "Several bags or a large item dumped",
                    "A large dump of rubbish, furniture or hazardous waste",
                ),
                _grade(
                    "graffiti",
                    "Graffiti",
                    "No graffiti",
                    "Small tags in a few places",
                    "Graffiti on several walls, shutters or signs",
                    "Offensive or widespread graffiti",
                ),
                _grade(
                    "overgrown_vegetation",
                    "Overgrown vegetation",
                    "Hedges, trees and verges well kept",
                    "Some growth over paths but easy to pass",
                    "Overgrowth blocking paths, signs or lights",
                    "Paths impassable or sight lines blocked at junctions",
                ),
            ],
        },
        {
            "theme": "Home Sweet Home",
            "lines": [
                _grade(
                    "bins_on_street",
                    "Bins left out on the street",
                    "Bins taken in after collection",
                    "A few bins left out",
                    "Many bins left out, blocking paths",
                    "Bins left out permanently, overflowing or set alight",
                ),
                _grade(
                    "empty_properties",
                    "Empty or neglected properties",
                    "No empty or neglected properties",
                    "An empty property that is kept secure",
                    "Empty properties becoming run down or open",
                    "Empty properties open, vandalised or used for crime",
                ),
                _grade(
                    "paths_and_roads",
                    "Paths and roads",
                    "Paths and roads in good repair",
                    "Minor cracks or wear",
                    "Potholes or broken paving that could trip someone",
                    "Dangerous surfaces that need urgent repair",
                ),
            ],
        },
    ],
}

AGREEMENT = {
    "title": "The Deal — Neighbourhood Agreement",
    "summary": "What the council and its partners promise, and what residents promise, to keep our "
    "neighbourhood a safe, happy home, peaceful and quiet, green and clean.",
    "themes": [
        {"key": "home_sweet_home", "name": "Home Sweet Home", "strapline": "For a safe, happy home and community"},
        {"key": "peace_and_quiet", "name": "Peace and Quiet", "strapline": "Keeping your streets safe and secure"},
        {"key": "green_and_clean", "name": "Green and Clean", "strapline": "For clean streets"},
    ],
    "our_part": [
        {"key": "council_tax", "text": "Keep your Council Tax as one of the lowest"},
        {"key": "support_each_other", "text": "Help communities to support each other"},
        {"key": "red_tape", "text": "Cut red tape and provide value for money"},
        {"key": "services_around_you", "text": "Build services around you and your family"},
        {"key": "young_people", "text": "Create opportunities for young people"},
        {"key": "local_economy", "text": "Support the local economy to grow"},
        {"key": "listen", "text": "Listen, be open, honest and friendly"},
        {"key": "believe_council", "text": "Believe in our borough"},
    ],
    "your_part": [
        {"key": "recycle", "text": "Recycle more, recycle right"},
        {"key": "get_involved", "text": "Get involved in your community"},
        {"key": "get_online", "text": "Get online"},
        {"key": "healthy", "text": "Be healthy and be active"},
        {"key": "protect", "text": "Help protect children and the vulnerable"},
        {"key": "local_businesses", "text": "Support your local businesses"},
        {"key": "have_your_say", "text": "Have your say and tell us if we get it wrong"},
        {"key": "believe_residents", "text": "Believe in our borough"},
    ],
    # A standard's `lines` are the street-form lines it concerns: the mystery-shop page compares
    # the standard with what reps graded on those lines. The response-time standards name none
    # (no street line shows how fast a phone is answered), so they are compared with their theme.
    "standards": [
        {"key": "bins_weekly", "theme": "green_and_clean", "text": "Bins emptied weekly", "days": 7,
         "lines": ["bins_on_street", "litter"]},
        {"key": "missed_bin", "theme": "green_and_clean", "text": "A reported missed bin collected within 2 working days", "days": 2,
         "lines": ["bins_on_street"]},
        {"key": "graffiti_5_days", "theme": "green_and_clean", "text": "Graffiti removed in 5 working days", "days": 5,
         "lines": ["graffiti"]},
        {"key": "offensive_graffiti", "theme": "green_and_clean", "text": "Offensive graffiti removed within 24 hours", "days": 1,
         "lines": ["graffiti"]},
        {"key": "fly_tipping", "theme": "green_and_clean", "text": "Fly-tipping cleared within 3 working days", "days": 3,
         "lines": ["fly_tipping"]},
        {"key": "street_lights", "theme": "peace_and_quiet", "text": "Street light faults fixed within 7 days", "days": 7,
         "lines": ["street_lighting"]},
        {"key": "abandoned_vehicles", "theme": "peace_and_quiet", "text": "Abandoned vehicles inspected within 3 working days", "days": 3,
         "lines": ["abandoned_vehicles"]},
        {"key": "answer_calls", "theme": "home_sweet_home", "text": "Phone calls answered within 2 minutes", "minutes": 2},
        {"key": "reply_online", "theme": "home_sweet_home", "text": "Online reports acknowledged within 1 working day", "days": 1},
    ],
}


def checklist_form(agreement: dict) -> dict:
    """The agreement checklist: one `kept` line per commitment of an agreement version."""

    def lines(part):
        return [
            {"key": f"{part}_{item['key']}", "type": "kept", "label": item["text"], "optional": True}
            for item in agreement[part]
        ]

    return {
        "kind": "checklist",
        "title": "Agreement checklist — is The Deal being kept?",
        "instructions": "For each promise, say whether it is kept where you live, and add a comment if you can.",
        "sections": [
            {"theme": "Our part (the council and partners)", "part": "our_part", "lines": lines("our_part")},
            {"theme": "Your part (residents)", "part": "your_part", "lines": lines("your_part")},
        ],
    }


def mystery_shop_form(agreement: dict) -> dict:
    """A mystery shop: scenario, channel, times, and the agreement's standards graded."""
    standards = [
        {
            "key": f"std_{s['key']}",
            "type": "kept",
            "label": s["text"],
            "standard": s["key"],
            "optional": True,
        }
        for s in agreement["standards"]
    ]
    return {
        "kind": "mystery_shop",
        "title": "Mystery shop",
        "instructions": "Test a service as any resident would, then record what happened.",
        "sections": [
            {
                "theme": "The contact",
                "lines": [
                    {
                        "key": "scenario",
                        "type": "choice",
                        "label": "Scenario",
                        "options": [
                            "Report a missed bin",
                            "Report fly-tipping",
                            "Report graffiti",
                            "Report a street light fault",
                            "Report an abandoned vehicle",
                            "Ask about recycling",
                        ],
                    },
                    {
                        "key": "channel",
                        "type": "choice",
                        "label": "How you made contact",
                        "options": ["phone", "online", "in_person"],
                    },
                    {"key": "contacted_at", "type": "datetime", "label": "When you made contact"},
                    {
                        "key": "answered_at",
                        "type": "datetime",
                        "label": "When you got an answer (leave empty if you never did)",
                        "optional": True,
                    },
                    {
                        "key": "resolved_at",
                        "type": "datetime",
                        "label": "When the problem was sorted (if it was)",
                        "optional": True,
                    },
                ],
            },
            {"theme": "Service standards", "lines": standards},
            {
                "theme": "Your experience",
                "lines": [
                    {
                        "key": "treated_well",
                        "type": "choice",
                        "label": "Were you treated in a friendly and helpful way?",
                        "options": ["yes", "partly", "no"],
                    },
                    {"key": "what_happened", "type": "text", "label": "What happened, in your own words"},
                ],
            },
        ],
    }
