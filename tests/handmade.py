"""Hand-made corpora whose right lists a reader can check by eye.

Each function returns a fresh article table. The stories are invented; the
shapes (a wire story and its syndicated copy, a follow-up, a thread of forum
replies, templated earnings reports) are the ones news sites and forums hold.
"""

from __future__ import annotations

import pandas as pd

_WIRE = (
    "Mount Kelvar erupted on Monday, sending ash high into the sky and forcing twelve thousand people to flee "
    "villages on the volcano's slopes. Lava reached the edge of Santa Irene by noon. The regional airport "
    "closed and the observatory raised its alert to the highest level.\n\n"
    "Evacuees are sleeping in schools in the provincial capital, where the army hands out water and masks."
)


def volcano() -> pd.DataFrame:
    """One volcano, five articles about it, and five other stories.

    By eye: ``kelvar-syndicated`` is the wire story ``kelvar-wire`` with a new
    headline, a credit line and a newsletter footer: one story, shown once.
    The follow-up a week later and the 2021 warning are other stories about the
    same volcano: they belong in the wire story's list. ``quake`` is a
    different disaster in the same region.
    """
    syndicated = (
        "By Staff Reporter | Wire Service\n\n"
        + _WIRE
        + "\n\nThis story was first published by Wire Service and is republished with permission.\n"
        "Sign up for our morning newsletter to get the day's top stories in your inbox.\n"
        "Related: Ten things to know about volcanoes | Photos: the night sky turns red"
    )
    rows = [
        ("kelvar-wire", "Mount Kelvar erupts, thousands flee ash and lava", _WIRE, "2024-03-04 07:30"),
        ("kelvar-syndicated", "Volcano forces 12,000 from their homes", syndicated, "2024-03-04 11:05"),
        (
            "kelvar-follow-up",
            "Kelvar evacuees return a week after the eruption",
            "A week after Mount Kelvar erupted, families who fled the volcano's slopes began to return to their "
            "villages. The observatory lowered its alert as tremors eased, but Santa Irene, where lava destroyed "
            "fourteen houses, stays closed. The airport reopened one runway, and farmers asked for aid for "
            "harvests lost to the ash.",
            "2024-03-11 09:00",
        ),
        (
            "kelvar-2021",
            "Scientists warn that Mount Kelvar is waking up",
            "Swarms of small tremors under Mount Kelvar show that magma is rising inside the volcano, the "
            "observatory said, although an eruption is not expected soon. Villages such as Santa Irene lie a few "
            "kilometres from the crater; officials will review evacuation plans for the slopes.",
            "2021-03-01 10:00",
        ),
        (
            "quake",
            "Earthquake shakes coastal towns, damaging the old harbour",
            "A magnitude 5.8 earthquake shook towns along the coast on Tuesday, cracking walls in the old "
            "harbour district and cutting power to thousands of homes.\n\n"
            "Emergency services said eleven people were treated for minor injuries. Engineers inspected two "
            "bridges on the coastal road, which reopened in the evening. The national observatory said the "
            "quake was not linked to the activity of any volcano.",
            "2024-03-05 14:00",
        ),
        (
            "budget",
            "City council approves next year's budget",
            "The city council approved a budget of 310 million for next year, with more money for buses, "
            "street lighting and two new libraries. The opposition voted against, saying property taxes rise "
            "too fast. The mayor said the budget keeps debt below the legal limit.",
            "2024-03-02 18:00",
        ),
        (
            "derby",
            "Late goal settles the derby",
            "A header in the last minute gave the home side a two-one win in the derby on Saturday. The coach "
            "praised the defence, which held out against a long spell of pressure in the second half.",
            "2024-03-03 21:00",
        ),
        (
            "library",
            "New library opens in the old post office",
            "The new central library opened on Friday in the restored post office building, with space for "
            "eighty thousand books, a children's floor and a café. Volunteers helped move the collection over "
            "three weekends.",
            "2024-03-01 12:00",
        ),
        (
            "orchestra",
            "Youth orchestra wins a national prize",
            "The city's youth orchestra won the national ensemble prize for its performance of a new symphony "
            "by a local composer. The musicians, aged twelve to nineteen, rehearse twice a week in a school hall.",
            "2024-02-27 19:00",
        ),
        (
            "rail",
            "Rail line closes for a month of repairs",
            "The northern rail line will close for a month from April while engineers replace tracks and "
            "signals. Replacement buses will run every twenty minutes, the operator said.",
            "2024-02-28 08:00",
        ),
    ]
    return pd.DataFrame(
        {
            "article_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "body": [r[2] for r in rows],
            "published": [r[3] for r in rows],
            "category": ["world"] * 5 + ["local"] * 5,
        }
    )


def volcano_later() -> pd.DataFrame:
    """The article a site adds a week after the eruption (``add_articles``)."""
    return pd.DataFrame(
        {
            "article_id": ["kelvar-ash-flights"],
            "title": ["Ash from Mount Kelvar grounds flights across the region"],
            "body": [
                "A new ash cloud from Mount Kelvar grounded two hundred flights on Tuesday, a week after the eruption "
                "emptied villages on the volcano's slopes. The observatory said the volcano still releases ash, "
                "although lava no longer flows towards Santa Irene; evacuees must stay in the shelters until the "
                "weekend."
            ],
            "published": ["2024-03-12 08:00"],
            "category": ["world"],
        }
    )


def flood_and_final() -> pd.DataFrame:
    """Three articles about a flood and three about a cup final.

    By eye: the two striker articles belong in each other's lists; none of the
    six is a copy of another.
    """
    rows = [
        (
            "final-report",
            "Striker scores twice in cup final",
            "The striker scored twice as Rovers won the cup final three-one on Saturday, with a header in the first "
            "half and a penalty late in the game. Rovers had not won the cup for thirty years.",
        ),
        (
            "final-coach",
            "Coach praises striker after final",
            "Rovers' coach praised his striker after the cup final, saying the two goals came from weeks of hard "
            "work in training. The coach said the team would celebrate with the fans on Sunday.",
        ),
        (
            "final-fans",
            "Fans celebrate cup win in the city centre",
            "Thousands of fans filled the city centre on Sunday to celebrate the cup win. The team's open bus "
            "moved slowly through the crowd, and the players lifted the cup from the top deck.",
        ),
        (
            "flood-river",
            "River bursts its banks after heavy rain",
            "The river burst its banks on Friday after two days of heavy rain, flooding streets and basements in "
            "the lower town. Firefighters pumped water from a care home.",
        ),
        (
            "flood-roads",
            "Flooded roads cut off villages",
            "Flooded roads cut off three villages in the valley, and the army delivered food and water by truck. "
            "The rain is expected to stop on Sunday.",
        ),
        (
            "flood-insurance",
            "Flood victims wait for insurance payments",
            "Families whose homes were flooded say they are still waiting for insurance payments. The council "
            "offered emergency grants while the water is pumped out of houses.",
        ),
    ]
    return pd.DataFrame(
        {
            "article_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "body": [r[2] for r in rows],
            "published": ["2024-05-04", "2024-05-05", "2024-05-05", "2024-05-03", "2024-05-04", "2024-05-06"],
        }
    )
