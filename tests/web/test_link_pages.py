"""What the link pages say: provider and account, a heading that says it is done, and a
refused link explained in the browser's language with a contact and the next step."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from durability.config import load_config
from durability.state.store import open_store
from durability.web.app import make_app
from durability.web.link_pages import language_of, refusal
from tests.web.conftest import SECRET, LinkWorld


def _h1(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page)
    assert found is not None, page
    return found.group(1)


@pytest.mark.parametrize(("customer", "who", "title", "button"), [
    ("c-1", "Example Hosting, konto c-1", "Potwierdź własną kopię zapasową", "Mam już kopię"),
    ("c-2", "Example Hosting, account c-2", "Confirm your own backup copy", "I have a copy"),
])
def test_form_page_names_provider_and_account(
    link_world: LinkWorld, customer: str, who: str, title: str, button: str,
) -> None:
    page = link_world.client.get(link_world.url("confirm", customer)).get_data(as_text=True)
    assert f'<p class="who">{who}</p>' in page
    assert _h1(page) == title
    assert f">{button}</button>" in page


@pytest.mark.parametrize(("customer", "action", "data", "heading", "sentence"), [
    ("c-1", "confirm", {"go": "1"}, "Kopia potwierdzona", "Zapisaliśmy potwierdzenie kopii"),
    ("c-2", "confirm", {"go": "1"}, "Copy confirmed", "Your copy is recorded"),
    ("c-1", "snooze", {"days": "14"}, "Przypomnienie odłożone",
     "Następne przypomnienie wyślemy nie wcześniej niż 9 grudnia 2026."),
    ("c-2", "snooze", {"days": "7"}, "Reminder postponed",
     "We will not remind you before December 2, 2026."),
    ("c-1", "unsubscribe", {"go": "1"}, "Przypomnienia wyłączone",
     "Nie będziemy już wysyłać przypomnień"),
    ("c-2", "unsubscribe", {"go": "1"}, "Reminders turned off", "no more backup reminders"),
])
def test_done_page_heading_says_it_is_done(
    link_world: LinkWorld, customer: str, action: str, data: dict[str, str], heading: str,
    sentence: str,
) -> None:
    url = link_world.url(action, customer)
    page = link_world.client.post(url, data=data).get_data(as_text=True)
    assert _h1(page) == heading
    # Polish text keeps one-letter words and numbers with the next word (no-break space).
    assert sentence in page.replace("\u00a0", " ")
    assert ("9\u00a0grudnia" in page) == (action == "snooze" and customer == "c-1")
    again = link_world.client.post(url, data=data).get_data(as_text=True)
    assert _h1(again) in ("Ten link został już użyty", "This link has been used already")


def test_snooze_buttons_and_bad_choice_in_customer_language(link_world: LinkWorld) -> None:
    page = link_world.client.get(link_world.url("snooze")).get_data(as_text=True)
    assert [b for b in re.findall(r">(Za \d+ dni)</button>", page)] == [
        "Za 7 dni", "Za 14 dni", "Za 30 dni"]
    url = link_world.url("snooze")
    bad = link_world.client.post(url, data={"days": "365"})
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert _h1(page) == "Nie wybrano terminu"
    assert ("Przypomnienie nie zostało odłożone, bo nie wybrano terminu. Wybierz, kiedy mamy Ci "
            "znowu przypomnieć o kopii:") in page.replace("\u00a0", " ")
    # The next step is right there: the same buttons, posting to the same link.
    assert re.findall(r">(Za \d+ dni)</button>", page) == ["Za 7 dni", "Za 14 dni", "Za 30 dni"]
    assert f'action="{url}"' in page


def test_bad_snooze_choice_in_english(link_world: LinkWorld) -> None:
    bad = link_world.client.post(link_world.url("snooze", "c-2"), data={})
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert _h1(page) == "No date was chosen"
    assert "The reminder was not postponed, because no date was chosen." in page
    assert re.findall(r">(In \d+ days)</button>", page) == ["In 7 days", "In 14 days",
                                                           "In 30 days"]


@pytest.mark.parametrize(("accept", "lang", "title", "next_step"), [
    (None, "pl", "Ten link jest niepełny lub uszkodzony",
     "Otwórz link jeszcze raz, klikając go bezpośrednio w wiadomości, bez kopiowania."),
    ("en-GB,en;q=0.9", "en", "This link is incomplete or damaged",
     "Open the link again by clicking it in the email itself"),
    ("de-DE,de;q=0.9", "pl", "Ten link jest niepełny lub uszkodzony",
     "użyj linku z naszej najnowszej wiadomości"),
    ("de,en;q=0.5,pl;q=0.8", "pl", "Ten link jest niepełny lub uszkodzony",
     "Na Twoim koncie nic się nie zmieniło."),
])
def test_invalid_link_page_in_browser_language_with_contact(
    link_world: LinkWorld, accept: str | None, lang: str, title: str, next_step: str,
) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    response = link_world.client.get("/l/confirm/garbage", headers=headers)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert _h1(page) == title
    assert next_step in page.replace("\u00a0", " ")
    assert ("Na Twoim koncie nic się nie zmieniło." in page) == (lang == "pl")
    assert ("Nothing was changed in your account." in page) == (lang == "en")
    assert ("Napisz do nas: backups@localhost." if lang == "pl"
            else "Write to us: backups@localhost.") in page
    assert "Example Hosting" in page


def test_expired_link_says_a_fresh_one_comes(link_world: LinkWorld) -> None:
    url = link_world.url("confirm", "c-2")
    link_world.clock[0] += timedelta(days=61)
    page = link_world.client.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert _h1(page) == "This link has expired"
    assert "Links in our reminder emails work for a limited time, and this one no longer does." \
        in page
    assert "If you do not have one, the next reminder brings fresh links." in page
    polish = link_world.client.get(url).get_data(as_text=True).replace("\u00a0", " ")
    assert _h1(polish) == "Ten link już wygasł"
    assert "Jeśli jej nie masz, nowe linki przyjdą w następnym przypomnieniu." in polish


@pytest.mark.parametrize(("kind", "accept", "title", "sentence", "button"), [
    ("snooze", "pl", "Ten link nie pasuje do tej strony",
     "Ten link służy do odłożenia przypomnienia.", "Przejdź do właściwej strony"),
    ("unsubscribe", "pl", "Ten link nie pasuje do tej strony",
     "Ten link służy do wyłączenia przypomnień.", "Przejdź do właściwej strony"),
    ("snooze", "en", "This link is meant for a different page",
     "This link is for postponing the reminder.", "Go to the right page"),
    ("unsubscribe", "en", "This link is meant for a different page",
     "This link is for turning the reminders off.", "Go to the right page"),
])
def test_link_of_another_kind_says_what_it_is_for_and_leads_there(
    link_world: LinkWorld, kind: str, accept: str, title: str, sentence: str, button: str,
) -> None:
    right = link_world.url(kind)
    wrong = right.replace(f"/l/{kind}/", "/l/confirm/")
    response = link_world.client.get(wrong, headers={"Accept-Language": accept})
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert _h1(page) == title
    assert sentence in page.replace("\u00a0", " ")
    assert f'<a class="button" href="{right}">{button}</a>' in page
    assert link_world.client.get(right).status_code == 200


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_every_refusal_says_what_happened_and_what_next(lang: str) -> None:
    titles = set()
    for reason, token_action in (("damaged", ""), ("expired", ""), ("action", "confirm"),
                                 ("action", "snooze"), ("action", "unsubscribe"),
                                 ("action", ""), ("something new", "")):
        title, paragraphs = refusal(lang, reason, token_action)
        titles.add(title)
        assert len(paragraphs) >= 2, (reason, paragraphs)
        unchanged = ("Na Twoim koncie nic się nie zmieniło." if lang == "pl"
                     else "Nothing was changed in your account.")
        assert unchanged in paragraphs
    assert len(titles) == 3  # damaged (also the fallback), expired, another kind


def test_unknown_account_page_with_configured_contact_and_panel(
    write_config: Callable[[str], Path], secret_path: Path,
) -> None:
    from werkzeug.test import Client

    from durability.web.signing import link_url, sign_token

    config = load_config(str(write_config(
        f'[web]\nsecret_file = "{secret_path}"\nbase_url = "https://links.example"\n'
        '[remind]\nprovider_name = "Hosting Żółw"\ncontact = "pomoc@hosting.example"\n'
        'panel_url = "https://panel.hosting.example"\n')))
    client = Client(make_app(config, lambda: open_store(config.state.path, config.state.url)))
    from durability.model import now_utc

    path = link_url("", "confirm", sign_token(SECRET, "c-404", "confirm", now_utc()))
    response = client.get(path)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert _h1(page) == "Nie znaleźliśmy konta"
    assert "Mogło zostać zamknięte." in page
    assert "Jeśli uważasz, że to pomyłka, skontaktuj się z\u00a0nami." in page
    assert "Napisz do nas: pomoc@hosting.example." in page
    assert "Panel klienta: https://panel.hosting.example" in page
    assert "Hosting Żółw" in page


def test_language_of_prefers_polish_when_unknown() -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    def lang(header: str | None) -> str:
        headers = {"Accept-Language": header} if header else {}
        return language_of(Request(EnvironBuilder(headers=headers).get_environ()))

    assert lang(None) == "pl"
    assert lang("fr") == "pl"
    assert lang("en-US") == "en"
    assert lang("pl-PL,en;q=0.5") == "pl"
