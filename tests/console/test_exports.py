"""CSV, CAP 1.2 and Atom exports: what a spreadsheet, a CAD system or a feed reader gets."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest

from agent.agency.console.exports import neutralise
from tests.agency.v2_alerts import alert_data
from tests.console.harness import PASSWORD, ConsoleHarness

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("yard", "yard"),
        ("", ""),
    ],
)
def test_neutralise(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_the_csv_export_neutralises_formulas_and_keeps_numbers(harness: ConsoleHarness) -> None:
    data = alert_data("depot-north", 1)
    data["info"]["headline"] = "=cmd|' /C calc'!A0"
    data["detection"]["zone"] = "@yard"
    harness.add_alert(harness.north, data)
    response = harness.login("ana").get("/export.csv?site=depot-north")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="alerts-')
    header, row = list(csv.reader(io.StringIO(response.text)))
    values = dict(zip(header, row, strict=True))
    assert values["headline"] == "'=cmd|' /C calc'!A0"
    assert values["zone"] == "'@yard"
    assert values["lon"] == "-0.12"  # a number the console wrote is left alone
    assert values["site_id"] == "depot-north" and values["sent"].endswith("Z")


def test_the_csv_export_holds_what_the_search_filter_says_and_is_audited(harness: ConsoleHarness) -> None:
    harness.alert(harness.north, 1)
    harness.alert(harness.hostile, 1)
    harness.alert(harness.north, 2, status="Exercise")
    client = harness.login("audrey")
    rows = list(csv.DictReader(io.StringIO(client.get("/export.csv?site=depot-north&exercise=1").text)))
    assert sorted(r["cap_status"] for r in rows) == ["Actual", "Exercise"]
    assert client.get("/export.csv?from=not-a-date").status_code == 400
    (record,) = [r for r in harness.audit_records() if r["kind"] == "console_export"]
    assert (record["user"], record["format"], record["rows"]) == ("audrey", "csv", 2)
    assert record["filter"]["site_id"] == "depot-north"


def test_an_alert_as_cap_xml(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    response = harness.login("ana").get(f"/alerts/{row.site_id}/{row.alert_id}.cap.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/cap+xml"
    root = ET.fromstring(response.content)
    assert root.tag == f"{CAP}alert"
    assert root.findtext(f"{CAP}identifier") == row.alert_id
    assert root.findtext(f"{CAP}info/{CAP}severity") == "Severe"
    assert root.findtext(f"{CAP}info/{CAP}area/{CAP}circle") == "51.50000,-0.12000 0.1"


def test_a_view_lacking_what_cap_needs_is_422_with_the_fields_named(harness: ConsoleHarness) -> None:
    data = alert_data("depot-north", 1)
    del data["info"]
    row = harness.add_alert(harness.north, data)
    response = harness.login("ana").get(f"/alerts/{row.site_id}/{row.alert_id}.cap.xml")
    assert response.status_code == 422
    assert "cannot be given as CAP 1.2: the view this recipient receives lacks info" in response.text


def test_an_unknown_alert_is_404(harness: ConsoleHarness) -> None:
    assert harness.login("ana").get("/alerts/depot-north/nope.cap.xml").status_code == 404


def test_the_atom_feed_links_each_alert_to_its_cap_xml(harness: ConsoleHarness) -> None:
    first = harness.alert(harness.north, 1)
    second = harness.alert(harness.north, 2)
    drill = harness.alert(harness.north, 3, status="Exercise")
    client = harness.login("ana")
    response = client.get("/feeds/cap.atom")
    assert response.headers["content-type"] == "application/atom+xml"
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    links = [e.find(f"{ATOM}link[@rel='alternate']") for e in feed.findall(f"{ATOM}entry")]
    hrefs = [str(link.get("href")) for link in links if link is not None]
    base = "http://testserver/alerts/depot-north/"
    assert hrefs == [f"{base}{second.alert_id}.cap.xml", f"{base}{first.alert_id}.cap.xml"]
    assert all(link is not None and link.get("type") == "application/cap+xml" for link in links)
    assert client.get(hrefs[0].removeprefix("http://testserver")).status_code == 200
    with_drills = ET.fromstring(client.get("/feeds/cap.atom?exercise=true").content)
    assert len(with_drills.findall(f"{ATOM}entry")) == 3
    assert drill.alert_id in client.get("/feeds/cap.atom?exercise=true").text


def test_a_cad_system_reads_the_feed_and_its_cap_documents_with_basic_credentials(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    cad = harness.client()  # no session, as a CAD system polls
    refused = cad.get("/feeds/cap.atom")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic ")
    assert cad.get("/feeds/cap.atom", auth=("audrey", "wrong password")).status_code == 401
    feed = cad.get("/feeds/cap.atom", auth=("audrey", PASSWORD))
    assert feed.status_code == 200
    link = ET.fromstring(feed.content).find(f"{ATOM}entry/{ATOM}link").get("href")  # type: ignore[union-attr]
    document = cad.get(link, auth=("audrey", PASSWORD))
    assert ET.fromstring(document.content).findtext(f"{CAP}identifier") == row.alert_id
    failed = [r for r in harness.audit_records() if r["kind"] == "console_login_failed"]
    assert [r["reason"] for r in failed] == ["feed_credentials"]


def test_basic_credentials_are_rate_limited_like_the_login_form(harness: ConsoleHarness) -> None:
    cad = harness.client()
    codes = [cad.get("/feeds/cap.atom", auth=("audrey", f"wrong {n}")).status_code for n in range(8)]
    assert codes[0] == 401 and codes[-1] == 429
    assert cad.get("/feeds/cap.atom", auth=("audrey", PASSWORD)).status_code == 429
