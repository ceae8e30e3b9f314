"""Twelve written meeting transcripts with what a careful reader takes from them: each action
item's owner and due (as said; None when not said) and the topics (one keyword each must
appear in some topic the engine names). Used by llm_quality.py.

The phrasings vary on purpose: "I'll", "can you", "X will", "X to", asked by someone else,
owner named after the task, deadlines as days, dates and relative phrases, and talk that
sounds like a task but is not one.
"""

from __future__ import annotations

from typing import Any

CASES: list[dict[str, Any]] = [
    {
        "name": "release planning",
        "text": (
            "Alice: Let's go over the release plan for version 2.4.\n"
            "Bob: The installer is done, but the changelog is still empty.\n"
            "Alice: Bob, please write the changelog by Thursday.\n"
            "Carol: I'll record the demo video next Monday.\n"
            "Alice: Good. The release itself stays on the 14th."
        ),
        "items": [("Bob", "Thursday"), ("Carol", "next Monday")],
        "topics": ["release", "changelog"],
    },
    {
        "name": "incident review",
        "text": (
            "Dan: Yesterday the payment service was down for forty minutes.\n"
            "Erin: The root cause was an expired TLS certificate on the gateway.\n"
            "Dan: Erin will add an expiry alert by Friday.\n"
            "Erin: And Farid should write the postmortem before next Wednesday.\n"
            "Farid: Fine, I'll do it."
        ),
        "items": [("Erin", "Friday"), ("Farid", "next Wednesday")],
        "topics": ["certificate", "payment"],
    },
    {
        "name": "hiring",
        "text": (
            "Grace: We interviewed three candidates for the data engineer role.\n"
            "Hiro: The second one was the strongest on SQL.\n"
            "Grace: Hiro, can you send her the offer tomorrow?\n"
            "Hiro: Yes. I'll also ask HR about the start date.\n"
            "Grace: Great, let's close the role this month."
        ),
        "items": [("Hiro", "tomorrow"), ("Hiro", None)],
        "topics": ["candidate", "offer"],
    },
    {
        "name": "budget",
        "text": (
            "Alice: The cloud bill went up twenty percent last quarter.\n"
            "Bob: Most of it is the analytics cluster running all night.\n"
            "Alice: Bob will schedule the cluster to stop at night by end of week.\n"
            "Carol: I can prepare a cost report for the board meeting on March 3rd.\n"
            "Alice: Please do, Carol."
        ),
        "items": [("Bob", "end of week"), ("Carol", "March 3rd")],
        "topics": ["cloud", "cost"],
    },
    {
        "name": "customer call",
        "text": (
            "Dan: Acme wants single sign-on before they renew.\n"
            "Erin: Their contract ends in June.\n"
            "Dan: Erin, draft the SSO proposal by next Tuesday.\n"
            "Erin: Sure. Dan, you'll set up a call with their IT team?\n"
            "Dan: Yes, this week."
        ),
        "items": [("Erin", "next Tuesday"), ("Dan", "this week")],
        "topics": ["sign-on", "contract"],
    },
    {
        "name": "office move",
        "text": (
            "Grace: The new office lease starts in April.\n"
            "Hiro: Movers need the inventory list two weeks before.\n"
            "Grace: Hiro will make the inventory list by March 15.\n"
            "Alice: I'll book the movers once the list is done.\n"
            "Grace: And nobody needs to pack anything yet."
        ),
        "items": [("Hiro", "March 15"), ("Alice", None)],
        "topics": ["office", "inventory"],
    },
    {
        "name": "security audit",
        "text": (
            "Bob: The auditors found two admin accounts without MFA.\n"
            "Carol: Those belong to the old build servers.\n"
            "Bob: Carol to remove both accounts today.\n"
            "Dan: I'll rotate the deploy keys by Friday.\n"
            "Bob: The full report goes to the auditors next month."
        ),
        "items": [("Carol", "today"), ("Dan", "Friday")],
        "topics": ["audit", "accounts"],
    },
    {
        "name": "design review",
        "text": (
            "Erin: The new onboarding screens tested well with five users.\n"
            "Farid: Two of them missed the skip button.\n"
            "Erin: Farid, please make the skip button bigger before the next test round.\n"
            "Grace: I'll update the design system components next week.\n"
            "Erin: Let's test again on the 20th."
        ),
        "items": [("Farid", "before the next test round"), ("Grace", "next week")],
        "topics": ["onboarding", "design"],
    },
    {
        "name": "data migration",
        "text": (
            "Hiro: The migration to the new database is half done.\n"
            "Alice: The reporting tables are still on the old one.\n"
            "Hiro: Alice will move the reporting tables by the end of the month.\n"
            "Bob: I'll write the rollback plan tomorrow.\n"
            "Hiro: We switch over once both are done."
        ),
        "items": [("Alice", "end of the month"), ("Bob", "tomorrow")],
        "topics": ["migration", "database"],
    },
    {
        "name": "marketing",
        "text": (
            "Carol: The spring campaign starts in three weeks.\n"
            "Dan: We still have no landing page.\n"
            "Carol: Dan, build the landing page by next Friday.\n"
            "Erin: I'll write the newsletter copy on Monday.\n"
            "Carol: Budget stays at ten thousand."
        ),
        "items": [("Dan", "next Friday"), ("Erin", "Monday")],
        "topics": ["campaign", "landing page"],
    },
    {
        "name": "support backlog",
        "text": (
            "Farid: The support queue has 300 open tickets.\n"
            "Grace: Half of them are password resets.\n"
            "Farid: Grace will add a self-service reset page this sprint.\n"
            "Hiro: I'll write a macro for the common answers today.\n"
            "Farid: Let's look at the numbers again next week."
        ),
        "items": [("Grace", "this sprint"), ("Hiro", "today")],
        "topics": ["support", "password"],
    },
    {
        "name": "partner integration",
        "text": (
            "Alice: Globex wants to integrate with our API.\n"
            "Bob: They need webhooks, which we do not have yet.\n"
            "Alice: Bob, can you estimate the webhook work by Wednesday?\n"
            "Carol: I'll send Globex the API documentation today.\n"
            "Alice: I will follow up with their CTO after that."
        ),
        "items": [("Bob", "Wednesday"), ("Carol", "today"), ("Alice", None)],
        "topics": ["webhook", "integration"],
    },
]
