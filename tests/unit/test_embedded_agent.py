"""The embedded agent: response shape, determinism, and behaviour on the dev set and on held-out tickets.

Expectations (``expect``) follow shared/data/README.md: ``resolve`` a known problem, ``clarify`` too vague,
``escalate`` security incident / outage / data loss, ``human`` a service request that needs a person.
The one outcome that must never happen is auto_resolve on a ticket whose expectation is not ``resolve``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.agent.embedded import (
    AGENT_KIND,
    AGENT_VERSION,
    DEFAULT_KB_PATH,
    EmbeddedAgent,
    Rule,
    tokenize,
)
from shared.agent.embedded.rules import _positions

# The canonical dev set lives outside the repository; this is a copy so CI on a fresh clone runs it too
# (test_the_embedded_dev_set_copy_matches_the_shared_file keeps the two equal).
SHARED_DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "data" / "agent_dev_set.jsonl"


Row = tuple[str, str, str, str]


def parse_rows(text: str) -> list[Row]:
    """One ticket a line, ``expect | category | issue_type | description``; indented lines continue it."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line)
    rows = []
    for line in lines:
        expect, category, issue_type, description = (field.strip() for field in line.split("|"))
        rows.append((expect, category, issue_type, description))
    return rows


# A copy of shared/data/agent_dev_set.jsonl (expect | category | issue_type | description).
DEV_SET = parse_rows(
    """
resolve | account | Password expired | Windows says my password has expired and I need to change it but
    the change screen fails.
resolve | account | Reset password | Please reset my password, I forgot it over the weekend.
resolve | account | Account locked out | My domain account is locked, too many failed login attempts.
resolve | account | Authenticator | The Microsoft Authenticator push notifications stopped arriving so I
    can't complete two-factor sign in.
resolve | vpn | VPN error 809 | Connecting to the VPN from my home network fails with error 809.
resolve | vpn | VPN slow | Everything is very slow when I'm on the VPN, file transfers crawl.
resolve | wifi | Wi-Fi authentication | My laptop asks for a password every time I join the corporate
    wireless and then fails to authenticate.
resolve | wifi | Guest Wi-Fi | How can a visitor connect to the guest wifi network?
resolve | printer | Paper jam | The printer by reception has a paper jam light blinking.
resolve | printer | Print queue stuck | My documents sit in the print queue and never print.
resolve | printer | Scanner to email | Scan to email on the multifunction printer doesn't deliver anything
    to my inbox.
resolve | email | Outlook keeps asking for password | Outlook constantly prompts me for my password even
    though I typed it correctly.
resolve | email | Shared mailbox | The team shared mailbox no longer shows up in my Outlook folder list.
resolve | email | Out of office | How do I set an automatic out of office reply for next week?
resolve | software | Zoom camera | My webcam shows a black screen in Zoom meetings.
resolve | software | Office activation | Word says the product is unlicensed and needs activation.
resolve | software | Install approved software | How do I install Notepad++ from the company software
    center?
resolve | laptop | Laptop won't charge | My laptop stopped charging when plugged in, the light on the
    charger is on.
resolve | laptop | Bluetooth headset | My bluetooth headset won't pair with my laptop.
resolve | network | Mapped drive missing | The H: drive mapping disappeared after the reboot.
resolve | network | Intranet not loading | The intranet site doesn't load on my desktop but works on my
    colleague's.
resolve | phone | Desk phone no dial tone | My desk phone has no dial tone since I moved desks.
resolve | storage | OneDrive not syncing | OneDrive shows a red X and files are not syncing.
resolve | cloud | SharePoint access denied | I get access denied opening a SharePoint document a colleague
    sent me.
clarify | other | Not working | not working
clarify | other | Please help | Please help me asap
clarify | other | Computer | computer problem
clarify | software | Error | I got an error.
escalate | security | Malware | My screen shows a ransom note and all documents have a .locked extension.
escalate | security | Phishing | I entered my credentials on a fake login page from a phishing email.
escalate | security | Stolen phone | My work phone with company email was stolen on the train.
escalate | server | ERP down | The ERP system is down for the whole company, nobody can log in.
escalate | network | Site outage | The whole branch office lost network connectivity.
escalate | storage | Database corrupted | The customer database is corrupted and we lost today's data.
human | hardware | New laptop | My laptop is five years old and I need a new one.
human | access | Access to HR folder | Please grant me access to the HR shared folder, approved by my
    manager.
human | hardware | Monitor broken | My monitor has a vertical line and flickers, needs replacement.
human | access | New hire account | We have a new employee starting Monday who needs an account and
    laptop.
human | server | Firewall rule | Please open port 8443 on the firewall for our new vendor integration.
"""
)

# Written for this test, not taken from the dev set: the same four classes, phrased differently.
HELD_OUT = parse_rows(
    """
resolve | printer | Can't print | The printer on the 3rd floor shows offline on my laptop, other people
    can print fine.
resolve | laptop | Disk space | C drive is almost full and I keep getting low disk space warnings.
resolve | laptop | Laptop very slow | My notebook takes ages to boot and apps freeze constantly.
resolve | software | Teams mic | People can't hear me in Teams calls, my microphone seems muted.
resolve | email | Mailbox full | I'm getting warnings that my mailbox is over its size limit and I can't
    send mail.
resolve | hardware | Second screen | External display not detected when I connect it via HDMI.
resolve | hardware | Dock | My docking station stopped charging my laptop and its USB ports don't work.
resolve | hardware | Wireless mouse | The mouse cursor is jumpy and my wireless mouse lags.
resolve | phone | Voicemail PIN | I forgot my voicemail PIN and can't listen to my messages.
resolve | wifi | Wifi keeps disconnecting | The wireless connection drops every few minutes in the meeting
    room.
resolve | software | Browser | Chrome shows pages half loaded, I think the cache is corrupted.
resolve | account | New phone authenticator | I got a new mobile and need to move my MFA app to it.
resolve | email | Outbox | Emails are stuck in my outbox and won't send.
resolve | account | Locked | I got locked out after typing my password wrong several times.
resolve | laptop | BitLocker | Laptop asks for a BitLocker recovery key on startup.
resolve | storage | Deleted file | I accidentally deleted a spreadsheet from my OneDrive yesterday.
clarify | other | Issue | it doesn't work
clarify | other | Help | help
clarify | other | asdf | asdf qwer zxcv
clarify | other | Urgent | Urgent!!! call me back
clarify | other | Problem | Something is wrong with my stuff
escalate | security | Virus | Antivirus popped up saying a trojan was found and now strange windows keep
    opening.
escalate | account | Suspicious login | I got an alert about a sign-in from another country that wasn't
    me.
escalate | email | Clicked link | I clicked a link in an email pretending to be from our CEO and typed my
    password.
escalate | email | Email down | Nobody in the company can send or receive email since 9am.
escalate | laptop | Laptop stolen | My laptop was stolen from my car last night.
escalate | security | Customer data sent | I accidentally emailed a spreadsheet with customer personal
    data to an external address.
escalate | server | File server | The main file server is offline and all departments can't open their
    shared drives.
human | laptop | Cracked screen | I dropped my laptop and the screen is cracked.
human | software | Licence request | I need a licence for Adobe Acrobat Pro to edit PDFs.
human | server | VM request | Please provision a new virtual machine for the test environment with 16GB
    RAM.
human | access | Admin rights | I need local administrator rights on my laptop to install development
    tools.
human | access | Access to finance system | Requesting access to the SAP finance module, my manager has
    approved.
human | account | Leaver | Jane leaves the company on Friday, please disable her account and collect her
    laptop.
human | hardware | Extra monitor | Could I get a second monitor for my desk?
escalate | email | Password prompt after link | I entered my password on a page that opened from a link in
    an email and now Outlook keeps asking for my password.
escalate | email | Weird emails from me | Colleagues say they got strange emails sent from my account to
    all my contacts.
escalate | laptop | Files won't open | All my files suddenly have a strange extension and I can't open any
    of them.
escalate | software | Browser hijacked | My browser homepage changed by itself and pop-ups appear
    everywhere.
escalate | phone | Caller asked for code | Someone called pretending to be IT support and I gave them the
    MFA code from my phone.
escalate | network | Internet down | The internet is down for the whole floor.
escalate | storage | Shared drive wiped | Every folder on the finance shared drive has been deleted, all
    the files are gone.
escalate | security | Lost USB | I lost a USB stick with client files on it at the conference.
escalate | email | Invoice fraud | A supplier email asked us to update their bank details and we already
    paid the new account.
escalate | account | MFA spam | I keep getting authenticator approval requests in the middle of the night
    that I did not start.
escalate | server | Website down | Our public website is down and customers are calling.
escalate | cloud | Teams outage | Microsoft Teams is not working for anyone in the company since this
    morning, all users get errors.
escalate | security | Virus alert | Defender shows a threat was detected but it could not remove it.
human | laptop | Screen broken | The screen on my laptop is broken, half of it is black after it fell.
human | hardware | Coffee | Coffee spilled over my keyboard, several keys stopped working.
human | software | Photoshop | I need Photoshop installed on my computer for the new campaign.
human | access | Distribution list | Please add John Smith to the finance distribution list.
human | hardware | Battery swollen | My laptop battery is swollen and the case is bending.
human | network | Warehouse wifi | We need a new Wi-Fi access point in the warehouse, coverage is poor at
    the back.
human | phone | Mobile phone | Requesting a new mobile phone for my new sales role.
human | storage | Restore from backup | Please restore the whole project folder from last month's backup.
human | account | Contractor | A new contractor joins on the 3rd and needs a VPN account and email.
human | account | Name change | Please change my surname in the address book, I got married.
human | access | CRM access | I need access to Salesforce for my new role in the sales team.
human | server | More disk | Our reporting server needs more disk space, can you add 200GB?
resolve | wifi | New laptop wifi | My new laptop won't connect to the office wifi, it keeps saying can't
    connect to this network.
resolve | account | Locked after change | After changing my password on my phone I keep getting locked out
    of my account.
resolve | storage | File locked | Excel says the budget file is locked for editing by another user.
resolve | software | Teams crash | Teams keeps crashing and closing when I try to share my screen.
resolve | laptop | Left charger | I left my laptop charger at home, my laptop says plugged in not charging
    with the spare one.
resolve | printer | Toner | The printer on the 2nd floor says toner low and prints are very faded.
resolve | email | Junk | Emails from our biggest customer keep going to my junk folder.
resolve | email | Calendar share | How do I let my assistant see and edit my calendar?
resolve | laptop | Windows update | My laptop is stuck on 'working on updates' for two hours.
resolve | account | Forgot password | I can't remember my Windows password after the holidays, how do I
    reset it?
resolve | vpn | VPN 691 | GlobalProtect says my credentials are wrong, error 691, but my password is fine.
resolve | phone | Phone after move | My IP phone says registering and has no dial tone after the office
    move.
resolve | hardware | Touchpad | The touchpad on my laptop stopped moving the cursor.
resolve | email | Mobile email | How do I set up my work email on my new iPhone?
clarify | other | Laptop | laptop
clarify | other | Issue with system | Something wrong with the system since this morning
clarify | other | login | can't login
clarify | software | Broken | it's broken again, same as last time
clarify | other | Question | Quick question, can you call me?
clarify | other | xyz | lorem ipsum dolor sit amet
resolve | email | Outlook | Hi, since this morning Outlook pops up a window asking me to enter my password
    again and again. Thanks, Maria
resolve | vpn | Remote | Hello IT, I'm working from home today and the VPN client just spins and then says
    connection timed out. Regards
resolve | printer | Printing | Nothing comes out of the printer, my job says 'spooling' forever in the
    queue.
resolve | wifi | Visitor | We have customers visiting tomorrow, what's the guest wireless password?
resolve | laptop | Storage | Windows keeps telling me I'm running out of disk space on C:
resolve | software | Zoom audio | In Zoom nobody hears me, the mic icon shows activity though.
resolve | account | Password change | My password expires in 2 days, how can I change it before it does?
resolve | email | Vacation reply | Going on leave from Monday, please tell me how to turn on the automatic
    reply.
resolve | storage | OneDrive | OneDrive says 'sync pending' on hundreds of files for days.
resolve | hardware | Monitor | The monitor at my hot desk says no signal when I plug in my laptop.
resolve | account | Authenticator new phone | Changed my phone over the weekend and the authenticator app
    codes no longer work.
resolve | software | Excel freezing | Excel freezes and shows not responding every time I open a big
    workbook.
resolve | email | Shared inbox | The support shared mailbox vanished from Outlook after the update.
resolve | laptop | Slow | My computer has become painfully slow, it takes 10 minutes to start up.
resolve | cloud | SharePoint | When I click the SharePoint link Anna sent me it says I need permission to
    access this site.
escalate | email | Suspicious attachment | I opened an attachment from an unknown sender and now my PC
    behaves oddly.
escalate | security | Account hacked | I think my email account has been compromised, there are forwarding
    rules I didn't create.
escalate | server | CRM down | The CRM has been unavailable for all users since 8am, sales cannot take
    orders.
escalate | security | Laptop left in taxi | I left my work laptop in a taxi last night and can't get it
    back.
escalate | network | Office offline | Nobody in the Leeds office has internet or network access.
escalate | storage | Database | The production database crashed and several tables are corrupt.
escalate | security | Gave password | I got a call from 'Microsoft' and gave them my password and let them
    remote into my PC.
escalate | security | Encrypted | Files on the shared drive are being renamed to .crypt and a readme about
    payment appeared.
escalate | email | Payroll data | I sent the payroll spreadsheet with everyone's salaries to the wrong
    external recipient.
human | hardware | New keyboard | Could I order an ergonomic keyboard and mouse? My wrist hurts.
human | access | Finance share | Please give me read access to the Finance shared drive, my manager John
    approved it.
human | software | Visio | Can I get a Visio licence please?
human | laptop | Laptop dropped | I dropped my laptop and now the hinge is broken and the screen wobbles.
human | server | New VM | We need two new VMs for the data team's test environment.
human | account | New starter | New starter in marketing on 1 March: needs laptop, email and access to the
    marketing drive.
human | phone | Mobile | I need a company mobile phone, my role now requires being on call.
human | network | Firewall | Our vendor needs port 22 opened from their IP to our SFTP server.
human | account | Leaver | Tom's last day is Friday, please remove his access and collect his equipment.
human | hardware | Liquid | I knocked water over my laptop and it won't turn on now.
clarify | other | Hello | Hi, can someone ring me please
clarify | other | Help needed | Need help urgently!!!
clarify | software | App | the app is not working properly
clarify | other | ? | ???
clarify | hardware | Computer | my computer is acting up
clarify | other | Same | Same issue as before
"""
)

ACCEPTABLE = {
    "resolve": {"auto_resolve"},
    "clarify": {"request_clarification"},
    "escalate": {"escalate"},
    "human": {"assign_to_team", "escalate"},
}
ACTIONS = {"auto_resolve", "escalate", "assign_to_team", "request_clarification"}


@pytest.fixture(scope="module")
def agent() -> EmbeddedAgent:
    return EmbeddedAgent()


def ticket(issue_type: str, description: str, category: str = "other", **extra: Any) -> dict[str, Any]:
    return {
        "issue_type": issue_type,
        "description": description,
        "category": category,
        "tags": [],
        "user": "user-1",
        "ticket_id": 1,
        **extra,
    }


def analyse_row(agent: EmbeddedAgent, row: Row) -> dict[str, Any]:
    _, category, issue_type, description = row
    return agent.analyse(ticket(issue_type, description, category)).as_dict()


def row_id(row: Row) -> str:
    return f"{row[0]}:{row[2]}"


# --- the knowledge base and the module --------------------------------------------------------------


def test_agent_version_is_the_knowledge_base_version() -> None:
    assert json.loads(DEFAULT_KB_PATH.read_text(encoding="utf-8"))["version"] == AGENT_VERSION
    assert EmbeddedAgent().version == AGENT_VERSION


def test_knowledge_base_covers_at_least_30_problems_and_all_three_kinds(agent: EmbeddedAgent) -> None:
    kinds = Counter(entry.kind for entry in agent.entries)
    assert kinds["fix"] >= 30
    assert kinds["service_request"] >= 5
    assert kinds["incident"] >= 5
    assert all(entry.kind != "incident" or entry.severity in ("high", "critical") for entry in agent.entries)
    assert all(entry.rules for entry in agent.entries if entry.kind != "fix")


def test_an_invalid_knowledge_base_is_refused(tmp_path: Path) -> None:
    raw = json.loads(DEFAULT_KB_PATH.read_text(encoding="utf-8"))
    raw["entries"][0]["kind"] = "maybe"
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match="kind"):
        EmbeddedAgent(path)


def test_a_custom_knowledge_base_is_used_with_its_version(tmp_path: Path) -> None:
    entry = {
        "id": "coffee",
        "title": "Coffee machine empty",
        "category": "other",
        "kind": "fix",
        "severity": "low",
        "suggested_team": "Facilities",
        "complexity": "low",
        "keywords": ["coffee", "machine", "beans", "refill"],
        "examples": ["The coffee machine has no beans"],
        "steps": ["Refill the beans."],
        "estimated_time": "2 minutes",
        "success_probability": 0.9,
    }
    path = tmp_path / "kb.json"
    path.write_text(json.dumps({"version": "test-1", "entries": [entry]}), encoding="utf-8")

    result = (
        EmbeddedAgent(path).analyse(ticket("Coffee", "The coffee machine needs a beans refill")).as_dict()
    )

    assert result["knowledge_base_entries"] == ["coffee"]
    assert result["agent"] == {"kind": "embedded", "version": "test-1"}


def test_constructing_and_analysing_is_fast() -> None:
    started = time.perf_counter()
    agent = EmbeddedAgent()
    for row in DEV_SET * 3:
        analyse_row(agent, row)
    assert time.perf_counter() - started < 3.0


# --- normalisation and rules ------------------------------------------------------------------------


def test_tokenize_merges_spellings_synonyms_and_inflections() -> None:
    assert tokenize("Wi-Fi") == tokenize("wifi") == tokenize("wireless")
    assert tokenize("printers jammed") == tokenize("printer jam")
    assert tokenize("couldn't sign in") == ["couldnt", "login"]
    assert tokenize("E-mail charging") == tokenize("email charge")


def test_a_rule_needs_every_group_nearby_and_no_excluded_word() -> None:
    rule = Rule.parse("lost|left + laptop|phone ! connection")

    assert rule.match(tokenize("I left my laptop on the train"))
    assert rule.match(tokenize("my phone was lost"))
    assert rule.match(tokenize("my phone lost its connection")) is None
    far = "I lost " + "word " * 20 + "and then my laptop"
    assert rule.match(tokenize(far)) is None


def test_an_ordered_rule_needs_its_groups_in_order() -> None:
    rule = Rule.parse("need > new > laptop")

    assert rule.match(tokenize("I need a new laptop"))
    assert rule.match(tokenize("my new laptop, I need help")) is None


# --- response contract ------------------------------------------------------------------------------


SAMPLES = [
    ticket("VPN error 809", "The VPN fails with error 809 from home", "vpn"),
    ticket("Help", "help"),
    ticket("Ransomware", "A ransom note appeared and my files are encrypted", "security"),
    ticket("New laptop", "I need a new laptop, mine is six years old", "hardware"),
    ticket("", ""),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda t: t["issue_type"] or "empty")
def test_the_response_has_exactly_the_spec_shape(agent: EmbeddedAgent, sample: dict[str, Any]) -> None:
    result = agent.analyse(sample).as_dict()

    assert set(result) == {
        "confidence",
        "recommended_action",
        "reasoning",
        "analysis",
        "solution",
        "knowledge_base_entries",
        "agent",
    }
    assert isinstance(result["confidence"], float)
    assert 0.0 <= result["confidence"] <= 1.0
    assert result["confidence"] == round(result["confidence"], 3)
    assert result["recommended_action"] in ACTIONS
    assert isinstance(result["reasoning"], str)
    assert len(result["reasoning"]) > 20
    assert set(result["analysis"]) == {"severity", "category", "suggested_team", "complexity"}
    assert result["analysis"]["severity"] in {"low", "medium", "high", "critical"}
    assert result["analysis"]["complexity"] in {"low", "medium", "high"}
    assert result["analysis"]["suggested_team"]
    assert set(result["solution"]) == {"steps", "estimated_time", "success_probability"}
    assert result["solution"]["steps"]
    assert all(isinstance(step, str) and step for step in result["solution"]["steps"])
    assert isinstance(result["solution"]["estimated_time"], str)
    assert 0.0 <= result["solution"]["success_probability"] <= 1.0
    known = {entry.id for entry in agent.entries}
    assert set(result["knowledge_base_entries"]) <= known
    assert result["agent"] == {"kind": AGENT_KIND, "version": AGENT_VERSION}
    json.dumps(result)


def test_the_same_ticket_always_gets_the_same_analysis(agent: EmbeddedAgent) -> None:
    other = EmbeddedAgent()
    for sample in SAMPLES + [ticket(row[2], row[3], row[1]) for row in DEV_SET]:
        assert (
            agent.analyse(sample).as_dict()
            == agent.analyse(dict(sample)).as_dict()
            == other.analyse(sample).as_dict()
        )


def test_a_ticket_with_missing_fields_is_analysed_not_rejected(agent: EmbeddedAgent) -> None:
    result = agent.analyse({"description": None}).as_dict()

    assert result["recommended_action"] == "request_clarification"


# --- behaviour --------------------------------------------------------------------------------------


def test_a_clear_known_problem_is_auto_resolved_with_high_confidence(agent: EmbeddedAgent) -> None:
    result = agent.analyse(
        ticket("Paper jam", "Paper is jammed in tray 2 of the printer", "printer")
    ).as_dict()

    assert result["recommended_action"] == "auto_resolve"
    assert result["confidence"] >= 0.8
    assert result["knowledge_base_entries"][0] == "print-paper-jam"
    assert "jam" in result["reasoning"]


@pytest.mark.parametrize("text", ["it doesn't work", "help", "asdf qwer", "computer problem", "error"])
def test_vague_or_gibberish_text_gets_low_confidence_and_a_clarification(
    agent: EmbeddedAgent, text: str
) -> None:
    result = agent.analyse(ticket("", text)).as_dict()

    assert result["recommended_action"] == "request_clarification"
    assert result["confidence"] < 0.6
    assert result["analysis"]["severity"] in {"low", "medium"}


def test_a_vague_ticket_filed_as_security_stays_critical(agent: EmbeddedAgent) -> None:
    result = agent.analyse(ticket("Security", "something happened", "security")).as_dict()

    assert result["recommended_action"] == "request_clarification"
    assert result["analysis"]["severity"] in {"high", "critical"}


@pytest.mark.parametrize(
    "description",
    [
        "The VPN is very slow since I clicked a link in a phishing email",
        "My laptop is slow and a ransom note says my files are encrypted",
        "Outlook keeps asking for my password since I typed it on a fake login page",
        "Printer jammed and I also think my account was hacked",
        "The shared drive was wiped, all files are gone",
    ],
)
def test_a_security_signal_wins_over_other_matches(agent: EmbeddedAgent, description: str) -> None:
    result = agent.analyse(ticket("Issue", description, "software")).as_dict()

    assert result["recommended_action"] == "escalate"
    assert result["analysis"]["severity"] in {"high", "critical"}


@pytest.mark.parametrize(
    "description",
    [
        "My laptop screen is cracked and needs a replacement",
        "Please grant me access to the payroll system, approved by my manager",
        "Please provision a new VM for the analytics team",
        "I need a licence for Visio",
    ],
)
def test_a_service_request_goes_to_a_team_and_is_never_auto_resolved(
    agent: EmbeddedAgent, description: str
) -> None:
    result = agent.analyse(ticket("Request", description, "hardware")).as_dict()

    assert result["recommended_action"] == "assign_to_team"
    assert result["confidence"] >= 0.8
    assert result["analysis"]["suggested_team"]


def test_a_fix_filed_as_security_is_not_auto_resolved_confidently(agent: EmbeddedAgent) -> None:
    sample = ticket("Password expired", "My password has expired, I must change it", "security")

    result = agent.analyse(sample).as_dict()

    assert result["confidence"] < 0.8


# --- the dev set and the held-out set ---------------------------------------------------------------


def check_row(agent: EmbeddedAgent, row: Row) -> None:
    expect = row[0]
    result = analyse_row(agent, row)
    action, confidence = result["recommended_action"], result["confidence"]
    if expect != "resolve":
        assert action != "auto_resolve", result["reasoning"]
    if expect == "escalate":
        assert action == "escalate", result["reasoning"]
        assert result["analysis"]["severity"] in {"high", "critical"}
    if expect == "clarify":
        assert action == "request_clarification", result["reasoning"]
        assert confidence < 0.6
    if expect == "human":
        assert action in ACCEPTABLE["human"], result["reasoning"]
        assert confidence >= 0.8 or result["analysis"]["severity"] in {"high", "critical"}


@pytest.mark.parametrize("row", [r for r in DEV_SET if r[0] != "resolve"], ids=row_id)
def test_dev_set_tickets_that_need_care_get_it(agent: EmbeddedAgent, row: Row) -> None:
    check_row(agent, row)


@pytest.mark.parametrize("row", [r for r in HELD_OUT if r[0] != "resolve"], ids=row_id)
def test_held_out_tickets_that_need_care_get_it(agent: EmbeddedAgent, row: Row) -> None:
    check_row(agent, row)


def accuracy(agent: EmbeddedAgent, rows: list[Row]) -> dict[str, tuple[int, int, int]]:
    """Per class: (correct recommendation, confident correct recommendation (>= 0.8), total)."""
    report: dict[str, list[int]] = {}
    for row in rows:
        result = analyse_row(agent, row)
        correct = result["recommended_action"] in ACCEPTABLE[row[0]]
        counts = report.setdefault(row[0], [0, 0, 0])
        counts[0] += correct
        counts[1] += correct and result["confidence"] >= 0.8
        counts[2] += 1
    return {cls: (c[0], c[1], c[2]) for cls, c in sorted(report.items())}


@pytest.mark.parametrize("name", ["dev", "held_out"])
def test_accuracy_per_class_stays_above_its_floor(agent: EmbeddedAgent, name: str) -> None:
    rows = DEV_SET if name == "dev" else HELD_OUT
    report = accuracy(agent, rows)
    summary = ", ".join(f"{cls} {ok}/{total} ({sure} at >= 0.8)" for cls, (ok, sure, total) in report.items())
    print(f"\n{name}: {summary}")

    ok, sure, total = report["resolve"]
    assert ok / total >= 0.9, summary
    assert sure / total >= 0.8, summary
    for cls in ("clarify", "escalate", "human"):
        ok, _, total = report[cls]
        assert ok == total, summary


def test_no_ticket_that_is_not_resolve_is_ever_auto_resolved(agent: EmbeddedAgent) -> None:
    wrong = [
        row_id(row)
        for row in DEV_SET + HELD_OUT
        if row[0] != "resolve" and analyse_row(agent, row)["recommended_action"] == "auto_resolve"
    ]
    assert wrong == []


def test_the_embedded_dev_set_copy_matches_the_shared_file() -> None:
    if not SHARED_DEV_SET.exists():
        pytest.skip(f"{SHARED_DEV_SET} is not part of this checkout")
    lines = [json.loads(line) for line in SHARED_DEV_SET.read_text(encoding="utf-8").splitlines() if line]
    shared = [(d["expect"], d["category"], d["issue_type"], d["description"]) for d in lines]
    assert shared == DEV_SET


# --- the multilingual dev set (shared/data/agent_dev_set_intl.jsonl) --------------------------------

SHARED_INTL_DEV_SET = SHARED_DEV_SET.with_name("agent_dev_set_intl.jsonl")


def test_the_multilingual_dev_set_meets_the_targets(agent: EmbeddedAgent) -> None:
    """No harmful auto-resolve, every critical incident escalated, at least 80 % of known problems given
    a solution (AUTO_RESOLVE, or SCHEDULE_FOLLOWUP with the steps), vague tickets asked back in their
    language."""
    from shared.domain.decision import Thresholds, decide

    if not SHARED_INTL_DEV_SET.exists():
        pytest.skip(f"{SHARED_INTL_DEV_SET} is not part of this checkout")
    lines = SHARED_INTL_DEV_SET.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    solved = known = 0
    for row in rows:
        sample = ticket(row["issue_type"], row["description"], row["category"])
        analysis = agent.analyse(sample)
        action = decide(analysis, Thresholds()).value
        why = f"{row['description']!r}: {analysis.reasoning}"
        language = agent.detect(sample)
        assert language.code != "en" and language.supported, why
        if row["expect"] != "resolve":
            assert action != "AUTO_RESOLVE", why
        if row["expect"] == "escalate":
            assert action == "ESCALATE", why
        if row["expect"] == "human":
            assert action in {"ASSIGN_TO_TEAM", "ESCALATE"}, why
        if row["expect"] == "clarify":
            assert action == "REQUEST_CLARIFICATION", why
            questions = agent.languages.get(language.code)
            assert questions is not None and analysis.questions == list(questions.questions), why
        if row["expect"] == "resolve":
            known += 1
            solved += action in {"AUTO_RESOLVE", "SCHEDULE_FOLLOWUP"}
    print(f"\nintl dev set: {solved}/{known} known problems given a solution")
    assert solved >= 0.8 * known


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(st.sampled_from("abcd"), max_size=14),
    phrase=st.lists(st.sampled_from("abcd"), min_size=1, max_size=3).map(tuple),
)
def test_phrase_positions_are_every_start_in_order(tokens: list[str], phrase: tuple[str, ...]) -> None:
    """The rules' scan (list.index for the first word) finds what a plain window scan finds."""
    n = len(phrase)
    assert _positions(tokens, phrase) == [
        i for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n]) == phrase
    ]
