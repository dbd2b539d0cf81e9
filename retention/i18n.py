"""The words of the HTML plan report and the certificate of destruction, in English and
Finnish, kept in one place.

Every message id has both languages (a test holds this); ``{name}`` placeholders are filled
by :meth:`Messages.__call__`. Dates stay ISO 8601 in both languages; numbers are grouped the
way each language writes them (1,234 and 1 234).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from retention.catalog.clock import Duration
    from retention.catalog.model import Policy, Unless

Language = Literal["en", "fi"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "fi")

MESSAGES: Final[dict[str, dict[Language, str]]] = {
    # The page and its header
    "title": {"en": "Retention plan", "fi": "Toimeenpanosuunnitelma"},
    "subtitle": {
        "en": "Dry run: nothing has been changed in any source.",
        "fi": "Koeajo: lähdejärjestelmien tietoihin ei ole tehty muutoksia.",
    },
    "erasure_subtitle": {
        "en": "Dry run of an erasure request: nothing has been changed in any source.",
        "fi": "Poistopyynnön koeajo: lähdejärjestelmien tietoihin ei ole tehty muutoksia.",
    },
    "plan_id": {"en": "Plan", "fi": "Suunnitelma"},
    "as_of": {"en": "As of", "fi": "Tilanne päivänä"},
    "created_at": {"en": "Created (UTC)", "fi": "Laadittu (UTC)"},
    "catalog": {"en": "Catalog", "fi": "Säilytyssäännöstö"},
    "job": {"en": "Job", "fi": "Ajastus"},
    "approval": {"en": "Approval", "fi": "Hyväksyntä"},
    "approved": {"en": "approved by {by} on {on}", "fi": "hyväksynyt {by} {on}"},
    "not_approved": {"en": "not approved", "fi": "ei hyväksytty"},
    "contents": {"en": "Contents", "fi": "Sisältö"},
    # Totals at a glance
    "glance": {"en": "At a glance", "fi": "Yleiskuva"},
    "glance_text": {
        "en": "{expire} records are due, {held} are held, {problems} policies have problems.",
        "fi": "Säilytysaika on päättynyt {expire} tietueelta, {held} on pidätetty, {problems} "
        "säilytyssäännössä on ongelmia.",
    },
    # Summary
    "summary": {
        "en": "Summary by register and policy",
        "fi": "Yhteenveto rekistereittäin ja säilytyssäännöittäin",
    },
    "register": {"en": "Register", "fi": "Rekisteri"},
    "controller": {"en": "Controller", "fi": "Rekisterinpitäjä"},
    "records_plan": {"en": "Records plan / source", "fi": "Tiedonohjaussuunnitelma / lähde"},
    "statutory": {
        "en": "Statutory register: erasure requests are refused.",
        "fi": "Lakisääteinen rekisteri: poistopyyntöjä ei toteuteta.",
    },
    "not_in_catalog": {
        "en": "(no longer in the catalog)",
        "fi": "(ei enää säilytyssäännöstössä)",
    },
    "policy": {"en": "Policy", "fi": "Säilytyssääntö"},
    "action": {"en": "Action", "fi": "Toimenpide"},
    "legal_basis": {"en": "Legal basis", "fi": "Oikeusperuste"},
    "rule": {"en": "Rule", "fi": "Säilytysaika ja toimenpide"},
    "status": {"en": "Status", "fi": "Tila"},
    "total": {"en": "Total", "fi": "Yhteensä"},
    "count_scanned": {"en": "Records", "fi": "Tietueita"},
    "count_expire": {"en": "Due", "fi": "Säilytysaika päättynyt"},
    "count_retain": {"en": "Kept", "fi": "Säilytetään"},
    "count_held": {"en": "Held", "fi": "Pidätetty"},
    "count_done": {"en": "Done", "fi": "Toimenpide tehty"},
    "legend": {
        "en": "Records: how many the policy governs. Due: the retention period has ended and "
        "the action will be applied. Kept: not yet due, or kept by an exception of the rule. "
        "Held: due, but a hold stops the action. Done: disposed of by an earlier run.",
        "fi": "Tietueita: säilytyssäännön piiriin kuuluvien tietueiden määrä. Säilytysaika "
        "päättynyt: säilytyssäännön toimenpide tehdään. Säilytetään: säilytysaika ei ole "
        "päättynyt tai säilytyssäännön poikkeus pitää tietueen. Pidätetty: säilytysaika on "
        "päättynyt, mutta hävittämisen pidätys estää toimenpiteen. Toimenpide tehty: aiempi "
        "ajo teki toimenpiteen jo.",
    },
    # Forecast chart
    "forecast": {
        "en": "Falling due in the coming 12 months",
        "fi": "Säilytysaika päättyy seuraavien 12 kuukauden aikana",
    },
    "forecast_text": {
        "en": "Records not yet due, by the month their retention period ends, per register. "
        "Counted in the sources when this report was written, with the cutoffs a run uses "
        "(the same numbers as retention forecast). The first month is the rest of {month}.",
        "fi": "Tietueet, joiden säilytysaika ei ole vielä päättynyt, päättymiskuukauden "
        "mukaan rekistereittäin. Laskettu lähdejärjestelmistä raportin laatimishetkellä "
        "samoin rajoin kuin ajossa (samat luvut kuin retention forecast -komennolla). "
        "Ensimmäinen sarake ({month}) kattaa kuluvan kuukauden loppuosan.",
    },
    "forecast_none": {
        "en": "Nothing falls due in these months.",
        "fi": "Näinä kuukausina minkään tietueen säilytysaika ei pääty.",
    },
    "forecast_not_counted": {
        "en": "Not counted for this plan (an erasure request has no schedule).",
        "fi": "Ei laskettu tälle suunnitelmalle (poistopyynnöllä ei ole aikataulua).",
    },
    "chart_title": {
        "en": "Records falling due per month, stacked by register",
        "fi": "Päättyvät säilytysajat kuukausittain, rekisterit pinottuina",
    },
    "axis_month": {"en": "Month", "fi": "Kuukausi"},
    "axis_records": {"en": "Records", "fi": "Tietueita"},
    "chart_table": {
        "en": "The chart's numbers per policy",
        "fi": "Kaavion luvut säilytyssäännöittäin",
    },
    # Due and held records
    "due_records": {"en": "Due records", "fi": "Tietueet, joiden säilytysaika on päättynyt"},
    "due_text": {
        "en": "Records whose retention period has ended and to which the policy's action "
        "will be applied, by key.",
        "fi": "Tietueet tunnisteittain, joiden säilytysaika on päättynyt ja joihin säilytyssäännön "
        "toimenpide kohdistuu.",
    },
    "held_records": {"en": "Held records", "fi": "Pidätetyt tietueet"},
    "held_text": {
        "en": "Due records that a hold (a legal hold or a restriction of processing) keeps "
        "from the action.",
        "fi": "Tietueet, joiden säilytysaika on päättynyt, mutta hävittämisen pidätys "
        "(oikeudellinen säilytysvelvoite tai käsittelyn rajoittaminen) estää toimenpiteen.",
    },
    "key": {"en": "Key", "fi": "Tunniste"},
    "decision": {"en": "Decision", "fi": "Päätös"},
    "trigger_date": {"en": "Trigger date", "fi": "Säilytysajan laskentaperusteen päivä"},
    "expires_on": {"en": "Due from", "fi": "Säilytysaika päättyy"},
    "hold": {"en": "Hold", "fi": "Pidätys"},
    "hold_reason": {"en": "Reason for the hold", "fi": "Pidätyksen syy"},
    "secret_row": {
        "en": "secret person: key and decision only",
        "fi": "salassa pidettävä henkilö: vain tunniste ja päätös",
    },
    "no_due": {
        "en": "No records are due.",
        "fi": "Ei tietueita, joiden säilytysaika on päättynyt.",
    },
    "no_held": {"en": "No records are held.", "fi": "Ei pidätettyjä tietueita."},
    "not_shown": {
        "en": "{hidden} more records are not shown here: the first {shown} of {total} are.",
        "fi": "Tässä näytetään {total} tietueesta ensimmäiset {shown}; {hidden} tietuetta "
        "jätettiin pois.",
    },
    "full_list_written": {
        "en": "Every record is listed in the report written with this page:",
        "fi": "Kaikki tietueet luetellaan tämän sivun kanssa kirjoitetussa raportissa:",
    },
    "full_list_how": {
        "en": "Every record is listed in the JSON and CSV reports: "
        "retention plan --report plan.html --report plan.csv writes this page and the full "
        "list from one plan.",
        "fi": "Kaikki tietueet luetellaan JSON- ja CSV-raporteissa: "
        "retention plan --report plan.html --report plan.csv kirjoittaa tämän sivun ja "
        "täydellisen luettelon samasta suunnitelmasta.",
    },
    # Problems
    "problems": {"en": "Problems", "fi": "Havaitut ongelmat"},
    "no_problems": {
        "en": "No problems: every policy was planned.",
        "fi": "Ei ongelmia: kaikki säilytyssäännöt käsiteltiin.",
    },
    "message": {"en": "Message", "fi": "Viesti"},
    "forecast_failed": {
        "en": "the forecast could not be counted: {message}",
        "fi": "ennustetta ei voitu laskea: {message}",
    },
    "footer": {
        "en": "Records are named by key only; no personal data appears in this report.",
        "fi": "Tietueet yksilöidään vain tunnisteella; raportissa ei ole henkilötietoja.",
    },
    # Values of the plan
    "action_anonymise": {"en": "anonymise", "fi": "anonymisoidaan"},
    "action_delete": {"en": "delete", "fi": "poistetaan"},
    "action_archive": {"en": "archive", "fi": "siirretään arkistoon"},
    "action_review": {"en": "review", "fi": "tarkastetaan"},
    "decision_expire": {"en": "due", "fi": "säilytysaika päättynyt"},
    "decision_held": {"en": "held", "fi": "pidätetty"},
    "decision_retain": {"en": "kept", "fi": "säilytetään"},
    "decision_done": {"en": "done", "fi": "toimenpide tehty"},
    "status_planned": {"en": "planned", "fi": "suunniteltu"},
    "status_completed": {"en": "completed", "fi": "valmis"},
    "status_failed": {"en": "failed", "fi": "epäonnistui"},
    "status_partial": {"en": "partial", "fi": "osittain"},
    "status_stopped": {"en": "stopped", "fi": "pysäytetty"},
    "status_interrupted": {"en": "interrupted", "fi": "keskeytetty"},
    "status_skipped": {"en": "skipped", "fi": "ohitettu"},
    # What an action changes (the plan report and the certificate of destruction)
    "changes": {"en": "What the action changes", "fi": "Mitä toimenpide muuttaa"},
    "changes_text": {
        "en": "Per policy: the columns the action rewrites and how, the columns it leaves as "
        "they are, and what an archive package holds. Column names only; no values.",
        "fi": "Säilytyssäännöittäin: sarakkeet, jotka toimenpide muuttaa ja miten, sarakkeet, "
        "jotka "
        "jäävät ennalleen, ja mitä arkistopaketti sisältää. Vain sarakkeiden nimet, ei arvoja.",
    },
    "change_location_table": {"en": "table {name}", "fi": "taulu {name}"},
    "change_location_files": {"en": "files {name}", "fi": "tiedostot {name}"},
    "change_delete": {
        "en": "Deletes the whole record: every column of the row.",
        "fi": "Poistaa koko tietueen: rivin kaikki sarakkeet.",
    },
    "change_delete_files": {
        "en": "Deletes the whole record: the file itself.",
        "fi": "Poistaa koko tietueen: itse tiedoston.",
    },
    "change_anonymise": {
        "en": "Anonymises: rewrites {columns}.",
        "fi": "Anonymisoi: muuttaa sarakkeet {columns}.",
    },
    "change_kept_key": {
        "en": "Keeps the key {columns}, which names the record in certificates.",
        "fi": "Säilyttää tunnisteen {columns}, jolla tietue yksilöidään hävittämistodistuksissa.",
    },
    "change_untouched": {
        "en": "Leaves as they are: {columns}.",
        "fi": "Jättää ennalleen: {columns}.",
    },
    "change_untouched_none": {
        "en": "Leaves no other column.",
        "fi": "Muita sarakkeita ei jää.",
    },
    "change_untouched_named": {
        "en": "Leaves as they are (the columns the policy names; the source could not be "
        "described): {columns}.",
        "fi": "Jättää ennalleen (säilytyssäännössä nimetyt sarakkeet; lähteen rakennetta ei saatu "
        "luettua): {columns}.",
    },
    "change_archive": {
        "en": "Archives each record into a {format} package per run and policy: "
        "records/REF.json with the columns {columns}; bag-info.txt naming the register, "
        "policy, legal basis and records plan; sha256 and sha512 checksums of every file.",
        "fi": "Siirtää jokaisen tietueen arkistoon {format}-paketissa (yksi paketti ajoa ja "
        "säilytyssääntöä kohden): records/REF.json, jossa sarakkeet {columns}; bag-info.txt, "
        "jossa rekisteri, säilytyssääntö, oikeusperuste ja tiedonohjaussuunnitelma; "
        "jokaisen tiedoston sha256- ja "
        "sha512-tarkisteet.",
    },
    "change_archive_all": {"en": "every column of the row", "fi": "rivin kaikki sarakkeet"},
    "change_archive_file": {
        "en": "the file and its metadata",
        "fi": "tiedosto ja sen kuvailutiedot",
    },
    "change_attachments": {
        "en": "The files its column {column} names on the file share {share} go with it "
        "(files/REF/ in an archive package).",
        "fi": "Sarakkeen {column} nimeämät tiedostot tiedostojaolla {share} käsitellään "
        "tietueen mukana (arkistopaketissa files/REF/).",
    },
    "change_then_delete": {
        "en": "Then, once the package validates, deletes the whole record.",
        "fi": "Kun paketti on tarkistettu eheäksi, poistaa koko tietueen.",
    },
    "change_then_anonymise": {
        "en": "Then, once the package validates, anonymises: rewrites {columns}.",
        "fi": "Kun paketti on tarkistettu eheäksi, anonymisoi: muuttaa sarakkeet {columns}.",
    },
    "change_then_keep": {
        "en": "The record stays in the source.",
        "fi": "Tietue jää lähdejärjestelmään.",
    },
    "change_review": {
        "en": "Changes nothing: due records are listed for a person to review.",
        "fi": "Ei muuta mitään: tietueet, joiden säilytysaika on päättynyt, luetellaan "
        "tarkastettaviksi.",
    },
    "change_unknown": {
        "en": "The catalog no longer holds the rule this was made under.",
        "fi": "Säilytyssäännöstössä ei ole enää säilytyssääntöä, jonka mukaan tämä laadittiin.",
    },
    "strategy_erase": {"en": "erase: emptied", "fi": "erase: tyhjennetään"},
    "strategy_redact": {
        "en": "redact: a value is replaced by [redacted]; an empty cell stays empty",
        "fi": "redact: arvo korvataan merkinnällä [redacted]; tyhjä kenttä jää tyhjäksi",
    },
    "strategy_year": {"en": "year: only the year is kept", "fi": "year: vain vuosi säilyy"},
    "strategy_pseudonym": {
        "en": "pseudonym: replaced by a keyed pseudonym",
        "fi": "pseudonym: korvataan avainnetulla pseudonyymillä",
    },
    # The certificate of destruction
    "cert_title": {"en": "Certificate of destruction", "fi": "Hävittämispöytäkirja"},
    "cert_period": {"en": "Period", "fi": "Ajanjakso"},
    "cert_period_text": {
        "en": "{start} to {end} (day of execution, UTC)",
        "fi": "{start} – {end} (toteutuspäivä, UTC)",
    },
    "cert_ledger_start": {"en": "the start of the ledger", "fi": "todistusketjun alku"},
    "cert_scope": {"en": "Scope", "fi": "Laajuus"},
    "cert_scope_register": {"en": "register {register}", "fi": "rekisteri {register}"},
    "cert_scope_all": {"en": "every register", "fi": "kaikki rekisterit"},
    "cert_exported_at": {"en": "Exported at", "fi": "Muodostettu"},
    "cert_certificates": {"en": "Certificates", "fi": "Hävittämistodistuksia"},
    "cert_in_file": {"en": "in", "fi": "tiedostossa"},
    "cert_disposals": {
        "en": "Disposals by register and policy",
        "fi": "Hävitetyt tiedot rekistereittäin ja säilytyssäännöittäin",
    },
    "cert_no_disposals": {
        "en": "No records were disposed of in this period.",
        "fi": "Ajanjaksolla ei hävitetty tietoja.",
    },
    "cert_register": {"en": "Register", "fi": "Rekisteri"},
    "cert_register_name": {"en": "Register name", "fi": "Rekisterin nimi"},
    "cert_controller": {"en": "Controller", "fi": "Rekisterinpitäjä"},
    "cert_records_plan": {
        "en": "Records plan / source",
        "fi": "Tiedonohjaussuunnitelma / lähde",
    },
    "cert_not_in_catalog": {
        "en": "(no longer in the catalog)",
        "fi": "(ei enää säilytyssäännöstössä)",
    },
    "cert_policy": {"en": "Policy", "fi": "Säilytyssääntö"},
    "cert_row_mark": {"en": "Policy ", "fi": "Säilytyssääntö "},
    "cert_legal_basis": {"en": "Legal basis", "fi": "Oikeusperuste"},
    "cert_no_basis": {"en": "not stated in the policy", "fi": "ei mainittu säilytyssäännössä"},
    "cert_deleted": {"en": "Deleted", "fi": "Poistettu"},
    "cert_anonymised": {"en": "Anonymised", "fi": "Anonymisoitu"},
    "cert_archived": {"en": "Archived", "fi": "Siirretty arkistoon"},
    "cert_retention": {"en": "Retention", "fi": "Säilytysaika päättyi"},
    "cert_erasure_request": {"en": "Erasure request", "fi": "Poistopyyntö"},
    "cert_total": {"en": "Total", "fi": "Yhteensä"},
    "cert_changed": {"en": "What the action changed", "fi": "Mitä toimenpide muutti"},
    "cert_fields": {
        "en": "Columns the certificates name as anonymised: {columns}.",
        "fi": "Hävittämistodistuksissa anonymisoiduiksi nimetyt sarakkeet: {columns}.",
    },
    "cert_packages": {
        "en": "Archive packages: {packages}.",
        "fi": "Arkistopaketit: {packages}.",
    },
    "cert_runs": {"en": "Run history", "fi": "Ajohistoria"},
    "cert_no_runs": {"en": "No runs in this period.", "fi": "Ajanjaksolla ei ollut ajoja."},
    "cert_run": {"en": "Run", "fi": "Ajo"},
    "cert_executed_plan": {"en": "Plan executed", "fi": "Toteutettu suunnitelma"},
    "cert_approved_by": {"en": "Approved by", "fi": "Hyväksyjä"},
    "cert_approved_at": {"en": "Approved at", "fi": "Hyväksytty"},
    "cert_unapproved": {
        "en": "not approved: run without an approved plan",
        "fi": "ei hyväksytty: ajettu ilman hyväksyttyä suunnitelmaa",
    },
    "cert_job": {"en": "Job", "fi": "Ajastus"},
    "cert_started": {"en": "Started", "fi": "Alkoi"},
    "cert_finished": {"en": "Finished", "fi": "Päättyi"},
    "cert_status": {"en": "Status", "fi": "Tila"},
    "cert_count": {"en": "Certificates", "fi": "Hävittämistodistuksia"},
    "run_status_running": {"en": "running", "fi": "käynnissä"},
    "run_status_completed": {"en": "completed", "fi": "valmis"},
    "run_status_partial": {"en": "partial", "fi": "osittain tehty"},
    "run_status_stopped": {"en": "stopped", "fi": "pysäytetty"},
    "run_status_failed": {"en": "failed", "fi": "epäonnistui"},
    "cert_approvals": {"en": "Approval history", "fi": "Hyväksyntähistoria"},
    "cert_approvals_text": {
        "en": "The plans a person approved (retention approve) and the run that executed each. "
        "A run's own record of its decisions is not an approval and is not listed.",
        "fi": "Suunnitelmat, jotka henkilö on hyväksynyt (retention approve), ja ajo, joka "
        "toteutti kunkin. Ajon oma päätöskirjaus ei ole hyväksyntä, eikä sitä luetella.",
    },
    "cert_no_approvals": {
        "en": "No approved plan was executed in this period.",
        "fi": "Ajanjaksolla ei toteutettu hyväksyttyjä suunnitelmia.",
    },
    "cert_plan": {"en": "Plan", "fi": "Suunnitelma"},
    "cert_as_of": {"en": "As of", "fi": "Tilanne päivänä"},
    "cert_comment": {"en": "Comment", "fi": "Perustelu"},
    "cert_executed_by": {"en": "Executed by run", "fi": "Toteuttanut ajo"},
    "cert_not_executed": {"en": "not executed", "fi": "ei toteutettu"},
    "cert_approvers": {
        "en": "Certificates naming their approver: {names}.",
        "fi": "Hyväksyjän nimeävät hävittämistodistukset: {names}.",
    },
    "cert_no_approvers": {
        "en": "No certificate names an approver.",
        "fi": "Yksikään todistus ei nimeä hyväksyjää.",
    },
    "cert_chain": {"en": "Chain evidence", "fi": "Todistusketjun eheys"},
    "cert_total_mark": {"en": "Total certificates: ", "fi": "Hävittämistodistuksia yhteensä: "},
    "cert_sequence": {"en": "Ledger sequence", "fi": "Todistusketjun järjestysnumerot"},
    "cert_range": {"en": "{first} to {last}", "fi": "{first}–{last}"},
    "cert_first_hash": {"en": "First hash", "fi": "Ensimmäinen tiiviste"},
    "cert_last_hash": {"en": "Last hash", "fi": "Viimeinen tiiviste"},
    "cert_key_id": {"en": "Signing key id", "fi": "Allekirjoitusavaimen tunniste"},
    "cert_file": {"en": "Certificates file", "fi": "Todistustiedosto"},
    "cert_file_sha256": {"en": "Its sha256", "fi": "Sen sha256"},
    "cert_manifest": {"en": "Manifest", "fi": "Allekirjoitettu luettelo (manifest)"},
    "cert_checkpoint_run": {"en": "Checkpoint of run", "fi": "Ajon allekirjoitettu tarkistuspiste"},
    "cert_checkpoint_sequence": {"en": "Sequence", "fi": "Järjestysnumerot"},
    "cert_checkpoint_count": {"en": "Count", "fi": "Määrä"},
    "cert_checkpoint_signed": {"en": "Signed at", "fi": "Allekirjoitettu"},
    "cert_checkpoint_key": {"en": "Key id", "fi": "Avaimen tunniste"},
    "cert_verification": {"en": "Verification", "fi": "Tarkistaminen"},
    "cert_statement": {
        "en": "These {count} certificates{chain} are listed in full in {companion}, whose "
        "sha256 is {sha256}. That file, this document and the ledger checkpoints covering the "
        "certificates are signed in {manifest}, and every signature verifies with the Ed25519 "
        "public key whose id is {key_id}. Check with `retention verify {file} --public-key "
        "PUBLIC-KEY.pem`: it re-hashes every certificate, checks the chain and the signatures, "
        "and re-counts the numbers printed here.",
        "fi": "Nämä {count} hävittämistodistusta{chain} luetellaan kokonaisuudessaan tiedostossa "
        "{companion}, jonka sha256 on {sha256}. Tiedosto, tämä asiakirja ja hävittämistodistukset "
        "kattavat todistusketjun tarkistuspisteet on allekirjoitettu tiedostossa "
        "{manifest}, ja jokainen "
        "allekirjoitus todentuu Ed25519-julkisella avaimella, jonka tunniste on {key_id}. "
        "Tarkista komennolla `retention verify {file} --public-key PUBLIC-KEY.pem`: se laskee "
        "jokaisen hävittämistodistuksen tiivisteen uudelleen, tarkistaa ketjun ja "
        "allekirjoitukset ja "
        "laskee tässä esitetyt luvut uudelleen.",
    },
    "cert_statement_chain": {
        "en": " (ledger sequence {first} to {last}, last hash {hash})",
        "fi": " (todistusketjun järjestysnumerot {first}–{last}, viimeinen tiiviste {hash})",
    },
    "cert_signed": {"en": "Signed", "fi": "Allekirjoitus"},
    "cert_confirm": {
        "en": "I confirm that the records summarised above were disposed of as stated.",
        "fi": "Vahvistan, että edellä yhteenvedetyt tiedot on hävitetty esitetyllä tavalla.",
    },
    "cert_name": {"en": "Name", "fi": "Nimi"},
    "cert_role": {"en": "Title", "fi": "Tehtävänimike"},
    "cert_date": {"en": "Date", "fi": "Päiväys"},
    "cert_signature": {"en": "Signature", "fi": "Allekirjoitus"},
    "cert_page": {"en": "{title} - page {page}", "fi": "{title} - sivu {page}"},
    "cert_footer": {
        "en": "Records are counted, never named: no personal data appears in this document.",
        "fi": "Tietueet vain lasketaan, niitä ei nimetä: asiakirjassa ei ole henkilötietoja.",
    },
    # Notifications: e-mail and webhook messages (retention/observe/notices.py)
    "n_plan_waiting_subject": {
        "en": "Plan {plan_id} waits for your review ({expire} records due)",
        "fi": "Suunnitelma {plan_id} odottaa tarkastustasi ({expire} tietuetta erääntynyt)",
    },
    "n_plan_waiting_intro": {
        "en": "A plan of job {job} as of {as_of} waits for a records manager's approval. "
        "Nothing is disposed of before it is approved.",
        "fi": "Ajastuksen {job} suunnitelma tilanteesta {as_of} odottaa arkistonhoitajan "
        "hyväksyntää. Mitään ei hävitetä ennen hyväksyntää.",
    },
    "n_plan_expiring_subject": {
        "en": "Plan {plan_id} expires unapproved on {expires_on}",
        "fi": "Suunnitelma {plan_id} vanhenee hyväksymättä {expires_on}",
    },
    "n_plan_expiring_intro": {
        "en": "This plan has not been approved and can no longer be approved after "
        "{expires_at}. Review it before then, or a new plan will be needed.",
        "fi": "Suunnitelmaa ei ole hyväksytty, eikä sitä voi hyväksyä enää {expires_at} "
        "jälkeen. Tarkasta se ennen sitä, muuten tarvitaan uusi suunnitelma.",
    },
    "n_policy_line": {
        "en": "{policy}: {expire} due, {held} held ({action})",
        "fi": "{policy}: {expire} erääntynyt, {held} pidätetty ({action})",
    },
    "n_expires_at": {"en": "Can be approved until", "fi": "Hyväksyttävissä asti"},
    "n_review_at": {"en": "Review it at", "fi": "Tarkasta se osoitteessa"},
    "n_report_at": {"en": "Its report", "fi": "Sen raportti"},
    "n_approve_with": {"en": "Approve with", "fi": "Hyväksy komennolla"},
    "n_run_failed_subject": {
        "en": "Retention job {job} failed (exit {exit_code})",
        "fi": "Säilytysajo {job} epäonnistui (paluuarvo {exit_code})",
    },
    "n_run_stopped_subject": {
        "en": "Retention job {job} stopped on a safety valve (exit {exit_code})",
        "fi": "Säilytysajo {job} pysähtyi turvarajaan (paluuarvo {exit_code})",
    },
    "n_run_failed_intro": {
        "en": "The run ended with status {status}. Records of the policies below were not "
        "all disposed of; the others completed. The log of the run has the details.",
        "fi": "Ajo päättyi tilaan {status}. Alla lueteltujen säilytyssääntöjen tietueita ei "
        "hävitetty kaikkia; muut suoritettiin. Ajon lokissa on yksityiskohdat.",
    },
    "n_run_error": {"en": "Error", "fi": "Virhe"},
    "n_run_ids": {"en": "Runs", "fi": "Ajot"},
    "n_policy_status": {
        "en": "{policy}: {status}, {disposed} disposed of",
        "fi": "{policy}: {status}, {disposed} hävitetty",
    },
    "n_hold_lapsing_subject": {
        "en": "Hold {hold_id} lapses after {until}",
        "fi": "Pidätys {hold_id} päättyy {until} jälkeen",
    },
    "n_hold_lapsing_intro": {
        "en": "From {after} on, the records this hold keeps are disposed of by the next run "
        "when they are due. Extend the hold (a new one with a later --until) if they must "
        "still be kept.",
        "fi": "Päivästä {after} alkaen seuraava ajo hävittää tämän pidätyksen suojaamat "
        "erääntyneet tietueet. Jatka pidätystä (uusi pidätys myöhemmällä --until-päivällä), "
        "jos ne on yhä säilytettävä.",
    },
    "n_hold_scope": {"en": "Scope", "fi": "Laajuus"},
    "n_scope_all": {"en": "every register", "fi": "kaikki rekisterit"},
    "n_scope_subject": {"en": "one data subject's records", "fi": "yhden rekisteröidyn tietueet"},
    "n_scope_record": {"en": "one record", "fi": "yksi tietue"},
    "n_digest_subject": {
        "en": "Retention digest {day}: {runs} runs, {disposed} records disposed of",
        "fi": "Säilytyskooste {day}: {runs} ajoa, {disposed} tietuetta hävitetty",
    },
    "n_digest_runs": {
        "en": "Runs in the last 24 hours: {runs} ({statuses})",
        "fi": "Ajot viimeisen vuorokauden aikana: {runs} ({statuses})",
    },
    "n_digest_disposed": {
        "en": "Records disposed of, each with a certificate: {count}",
        "fi": "Hävitetyt tietueet, kukin hävittämistodistuksineen: {count}",
    },
    "n_digest_pending": {
        "en": "Plans waiting for approval: {count}",
        "fi": "Hyväksyntää odottavat suunnitelmat: {count}",
    },
    "n_digest_holds": {
        "en": "Holds in force: {count}; lapsing within {days} days: {lapsing}",
        "fi": "Voimassa olevat pidätykset: {count}; päättyy {days} päivän kuluessa: {lapsing}",
    },
    "n_digest_last_success": {
        "en": "Last successful run of job {job}: {at}",
        "fi": "Ajastuksen {job} viimeisin onnistunut ajo: {at}",
    },
    "n_never": {"en": "never", "fi": "ei koskaan"},
    "n_footer": {
        "en": "Sent by retention. Records are counted, never named: this message holds no "
        "personal data.",
        "fi": "Lähettäjä: retention. Tietueet vain lasketaan, niitä ei nimetä: viestissä ei ole "
        "henkilötietoja.",
    },
    # Review and attribution: who made a plan, identities not authenticated
    "made_by": {"en": "Made by", "fi": "Laatija"},
    "unauthenticated": {
        "en": "unauthenticated: a name typed at the command line",
        "fi": "tunnistamaton: komentorivillä annettu nimi",
    },
    # --- the web workspace (`retention serve`) -----------------------------------------------
    "web_app": {"en": "Retention workspace", "fi": "Säilytyksen työtila"},
    "web_skip": {"en": "Skip to content", "fi": "Siirry sisältöön"},
    "web_nav": {"en": "Main", "fi": "Päävalikko"},
    "web_plans": {"en": "Plans", "fi": "Toimeenpanosuunnitelmat"},
    "web_holds": {"en": "Holds", "fi": "Pidätykset"},
    "web_evidence": {"en": "Evidence", "fi": "Todisteet"},
    "web_signed_in_as": {"en": "{name} ({role})", "fi": "{name} ({role})"},
    "role_viewer": {"en": "viewer", "fi": "lukija"},
    "role_records-manager": {"en": "records manager", "fi": "tiedonhallinnan asiantuntija"},
    "role_archivist": {"en": "archivist", "fi": "arkistonhoitaja"},
    "role_dpo": {"en": "data protection officer", "fi": "tietosuojavastaava"},
    "role_operator": {"en": "operator", "fi": "ylläpitäjä"},
    "web_sign_in": {"en": "Sign in", "fi": "Kirjaudu sisään"},
    "web_sign_out": {"en": "Sign out", "fi": "Kirjaudu ulos"},
    "web_footer": {
        "en": "Records are named by key only; a secret person's records show key and decision "
        "only.",
        "fi": "Tietueet nimetään vain tunnisteella; salassa pidettävän henkilön tietueista "
        "näytetään vain tunniste ja päätös.",
    },
    "web_nothing_changed": {"en": "Nothing was changed.", "fi": "Mitään ei muutettu."},
    "web_back": {"en": "Back to the workspace", "fi": "Takaisin työtilaan"},
    "web_signin_failed": {
        "en": "The name or the password is wrong, or the account is disabled.",
        "fi": "Käyttäjänimi tai salasana on väärin, tai tili on poistettu käytöstä.",
    },
    "web_signin_throttled": {
        "en": "Too many failed sign-ins under this name: try again in {minutes} minute(s).",
        "fi": "Liian monta epäonnistunutta kirjautumista tällä nimellä: yritä uudelleen "
        "{minutes} minuutin kuluttua.",
    },
    "web_signin_oidc": {"en": "Organisation account", "fi": "Organisaation tunnus"},
    "web_signin_oidc_button": {
        "en": "Sign in with your organisation's account",
        "fi": "Kirjaudu organisaation tunnuksella",
    },
    "web_signin_local": {"en": "Local account", "fi": "Paikallinen tunnus"},
    "web_account_name": {"en": "Name", "fi": "Käyttäjänimi"},
    "web_password": {"en": "Password", "fi": "Salasana"},
    "web_plans_intro": {
        "en": "Plans made for approval, newest first. A plan is executed only once its "
        "approvals are complete.",
        "fi": "Hyväksyttäviksi laaditut toimeenpanosuunnitelmat, uusin ensin. Suunnitelma "
        "pannaan toimeen vasta, kun sen hyväksynnät ovat valmiit.",
    },
    "web_plan_states": {"en": "Plans by state", "fi": "Suunnitelmat tiloittain"},
    "web_all": {"en": "all", "fi": "kaikki"},
    "plan_state_pending": {"en": "pending", "fi": "odottaa hyväksyntää"},
    "plan_state_cooling-off": {"en": "cooling off", "fi": "odotusajalla"},
    "plan_state_approved": {"en": "approved", "fi": "hyväksytty"},
    "plan_state_executed": {"en": "executed", "fi": "toimeenpantu"},
    "plan_state_expired": {"en": "expired", "fi": "vanhentunut"},
    "plan_state_stale": {"en": "stale", "fi": "sääntö muuttunut"},
    "plan_state_rejected": {"en": "rejected", "fi": "hylätty"},
    "web_plans_caption": {"en": "Stored plans", "fi": "Tallennetut suunnitelmat"},
    "web_no_plans": {"en": "No plans.", "fi": "Ei suunnitelmia."},
    "web_expires": {"en": "Expires", "fi": "Vanhenee"},
    "web_executed_by_run": {"en": "Executed by run", "fi": "Toimeenpannut ajo"},
    "web_downloads": {"en": "Reports", "fi": "Raportit"},
    "web_decisions": {"en": "Review", "fi": "Käsittely"},
    "web_decision_approval": {"en": "Approved", "fi": "Hyväksynyt"},
    "web_decision_rejection": {"en": "Rejected", "fi": "Hylännyt"},
    "web_decision_exclusion": {"en": "Excluded a record", "fi": "Rajannut tietueen pois"},
    "web_no_decisions": {
        "en": "Nobody has approved this plan yet.",
        "fi": "Kukaan ei ole vielä hyväksynyt suunnitelmaa.",
    },
    "web_comment": {"en": "Comment", "fi": "Kommentti"},
    "web_approve": {"en": "Approve the plan", "fi": "Hyväksy suunnitelma"},
    "web_reject": {"en": "Reject the plan", "fi": "Hylkää suunnitelma"},
    "web_approved": {"en": "Your approval was recorded.", "fi": "Hyväksyntäsi kirjattiin."},
    "web_approved_more": {
        "en": "Your approval was recorded; the plan needs more approvals before it may run.",
        "fi": "Hyväksyntäsi kirjattiin; suunnitelma tarvitsee vielä muita hyväksyntöjä ennen "
        "toimeenpanoa.",
    },
    "web_missing": {"en": "Still needed", "fi": "Vielä tarvitaan"},
    "web_approvals_of": {
        "en": "{given} of {needed} approvals",
        "fi": "{given}/{needed} hyväksyntää",
    },
    "web_unauthenticated": {"en": "unauthenticated", "fi": "tunnistamaton"},
    "web_needs": {"en": "{count} approval(s)", "fi": "{count} hyväksyntä(ä)"},
    "web_needs_more": {
        "en": "{count} more approval(s) from another person",
        "fi": "{count} hyväksyntä(ä) lisää toiselta henkilöltä",
    },
    "web_needs_archivist": {"en": "an archivist's approval", "fi": "arkistonhoitajan hyväksyntä"},
    "web_needs_not_changer": {
        "en": "(the approval of the person who last changed the plan does not count)",
        "fi": "(suunnitelmaa viimeksi muuttaneen henkilön hyväksyntää ei lasketa)",
    },
    "web_needs_because": {"en": "(rules: {rules})", "fi": "(säännöt: {rules})"},
    "web_made_by": {"en": "Made by", "fi": "Laatinut"},
    "web_changed_by": {"en": "Last changed by", "fi": "Viimeksi muuttanut"},
    "web_rejected": {"en": "Your rejection was recorded.", "fi": "Hylkäyksesi kirjattiin."},
    "web_reject_needs_comment": {
        "en": "Say why in the comment to reject a plan.",
        "fi": "Kerro hylkäyksen syy kommentissa.",
    },
    "web_counts_of": {"en": "Records of {policy}", "fi": "Säilytyssäännön {policy} tietueet"},
    "web_what_changes": {"en": "What the action changes", "fi": "Mitä toimenpide muuttaa"},
    "web_rule_gone": {
        "en": "Unknown: the catalog no longer holds the rule of this plan.",
        "fi": "Ei tiedossa: säilytyssäännöstössä ei enää ole tämän suunnitelman sääntöä.",
    },
    "web_none": {"en": "None.", "fi": "Ei yhtään."},
    "web_shown_first": {"en": "the first {count} shown", "fi": "näytetään {count} ensimmäistä"},
    "web_trigger": {"en": "Trigger date", "fi": "Säilytysajan laskentaperusteen päivä"},
    "web_reason": {"en": "Reason", "fi": "Peruste"},
    "web_exclude": {"en": "Exclude a record", "fi": "Rajaa tietue pois"},
    "web_exclude_intro": {
        "en": "An excluded record is kept: it becomes a hold on that record alone, shown "
        "with the other holds, until someone releases it.",
        "fi": "Pois rajattu tietue säilytetään: siitä tulee vain tätä tietuetta koskeva "
        "pidätys, joka näkyy muiden pidätysten joukossa, kunnes joku purkaa sen.",
    },
    "web_key_help": {
        "en": "For a key of several columns, give each value on its own line, in the key's order.",
        "fi": "Jos tunniste on useassa sarakkeessa, kirjoita kukin arvo omalle rivilleen "
        "tunnisteen järjestyksessä.",
    },
    "web_exclude_button": {"en": "Exclude the record", "fi": "Rajaa tietue pois"},
    "web_exclude_incomplete": {
        "en": "Give the policy, the key and a reason.",
        "fi": "Anna säilytyssääntö, tunniste ja peruste.",
    },
    "web_excluded": {
        "en": "The record was excluded: a hold keeps it.",
        "fi": "Tietue rajattiin pois: pidätys säilyttää sen.",
    },
    "web_holds_intro": {
        "en": "A hold keeps due records from disposal: a register, a policy, a person's "
        "records or one record, with a reason and an optional last day.",
        "fi": "Pidätys estää säilytysajaltaan päättyneiden tietueiden hävittämisen: "
        "rekisterin, säilytyssäännön, henkilön tai yksittäisen tietueen osalta, perusteineen "
        "ja halutessa viimeisine voimassaolopäivineen.",
    },
    "web_place_hold": {"en": "Place a hold", "fi": "Aseta pidätys"},
    "web_hold_covers_nothing": {
        "en": "This hold covers no record today: no record has that subject or key (check "
        "it for a typo). Nothing was saved. Place it anyway for records yet to come, or "
        "correct the form.",
        "fi": "Pidätys ei koske tänään yhtään tietuetta: millään tietueella ei ole tätä "
        "rekisteröityä tai tunnistetta (tarkista kirjoitusasu). Mitään ei tallennettu. Aseta "
        "se silti tulevia tietueita varten, tai korjaa lomake.",
    },
    "web_any": {"en": "(any)", "fi": "(kaikki)"},
    "web_subject": {"en": "Data subject", "fi": "Rekisteröity"},
    "web_subject_help": {
        "en": "The person's identifier as the register stores it; kept only as a keyed reference.",
        "fi": "Henkilön tunniste rekisterin muodossa; tallennetaan vain avaimella "
        "muodostettuna viitteenä.",
    },
    "web_until": {"en": "Last day", "fi": "Viimeinen voimassaolopäivä"},
    "web_until_help": {
        "en": "Empty: in force until released.",
        "fi": "Tyhjä: voimassa, kunnes pidätys puretaan.",
    },
    "web_place": {"en": "Place the hold", "fi": "Aseta pidätys"},
    "web_place_anyway": {"en": "Place it anyway", "fi": "Aseta silti"},
    "web_holds_in_force": {"en": "Holds in force", "fi": "Voimassa olevat pidätykset"},
    "web_holds_all": {"en": "All holds", "fi": "Kaikki pidätykset"},
    "web_show_all": {
        "en": "Show released and lapsed holds too",
        "fi": "Näytä myös puretut ja päättyneet pidätykset",
    },
    "web_show_in_force": {
        "en": "Show holds in force only",
        "fi": "Näytä vain voimassa olevat pidätykset",
    },
    "web_scope": {"en": "Covers", "fi": "Koskee"},
    "web_placed": {"en": "Placed by", "fi": "Asettanut"},
    "web_released": {"en": "Released by", "fi": "Purkanut"},
    "web_release": {"en": "Release", "fi": "Pura"},
    "web_release_hold": {"en": "Release hold {hold}", "fi": "Pura pidätys {hold}"},
    "web_subject_ref": {"en": "subject reference", "fi": "rekisteröidyn viite"},
    "web_everything": {"en": "every record", "fi": "kaikki tietueet"},
    "web_no_holds": {"en": "No holds.", "fi": "Ei pidätyksiä."},
    "web_hold_placed": {
        "en": "Hold {hold} placed: it covers {count} record(s) today.",
        "fi": "Pidätys {hold} asetettiin: se koskee tänään {count} tietuetta.",
    },
    "web_hold_released": {"en": "Hold {hold} released.", "fi": "Pidätys {hold} purettiin."},
    "web_hold_needs_reason": {
        "en": "Give a reason for the hold.",
        "fi": "Anna pidätykselle peruste.",
    },
    "web_hold_record_needs_policy": {
        "en": "A hold on a record names its policy.",
        "fi": "Tietuetta koskeva pidätys nimeää säilytyssäännön.",
    },
    "web_bad_date": {
        "en": "The last day is not a date like 2026-12-31.",
        "fi": "Viimeinen päivä ei ole päivämäärä muotoa 2026-12-31.",
    },
    "web_runs": {"en": "Runs", "fi": "Ajot"},
    "web_run": {"en": "Run", "fi": "Ajo"},
    "web_started": {"en": "Started (UTC)", "fi": "Alkanut (UTC)"},
    "web_plan_executed": {"en": "Plan executed", "fi": "Toimeenpantu suunnitelma"},
    "web_disposed": {"en": "Disposed of", "fi": "Hävitetty"},
    "web_no_runs": {"en": "No runs yet.", "fi": "Ei vielä ajoja."},
    "web_ledger": {
        "en": "The ledger holds {count} certificates.",
        "fi": "Todistusketjussa on {count} hävittämistodistusta.",
    },
    "web_forecast_failed": {
        "en": "The forecast could not be counted now.",
        "fi": "Ennustetta ei voitu nyt laskea.",
    },
    "web_show_forecast": {"en": "Show the forecast", "fi": "Näytä ennuste"},
    "web_export": {"en": "Export certificates", "fi": "Vie hävittämistodistukset"},
    "web_export_intro": {
        "en": "A signed export in a zip: the file, its signed manifest and, for a "
        "certificate of destruction (HTML, PDF), its certificates.",
        "fi": "Allekirjoitettu vienti zip-tiedostona: tiedosto, sen allekirjoitettu luettelo "
        "ja hävittämispöytäkirjan (HTML, PDF) hävittämistodistukset.",
    },
    "web_format": {"en": "Format", "fi": "Muoto"},
    "web_since": {"en": "First day (UTC)", "fi": "Ensimmäinen päivä (UTC)"},
    "web_until_day": {"en": "Last day (UTC)", "fi": "Viimeinen päivä (UTC)"},
    "web_download": {"en": "Download", "fi": "Lataa"},
    "web_verify": {"en": "Verify an export", "fi": "Tarkista vienti"},
    "web_verify_intro": {
        "en": "Upload the zip this page gives, or an export with its manifest: every "
        "certificate is hashed again and every signature checked with this installation's "
        "public key.",
        "fi": "Lataa tämän sivun antama zip-tiedosto tai vienti allekirjoitettuine "
        "luetteloineen: jokaisen hävittämistodistuksen tiiviste lasketaan uudelleen ja "
        "jokainen allekirjoitus tarkistetaan tämän asennuksen julkisella avaimella.",
    },
    "web_files": {"en": "Files", "fi": "Tiedostot"},
    "web_verify_button": {"en": "Verify", "fi": "Tarkista"},
    "web_verify_one_file": {
        "en": "Upload exactly one export (with its manifest).",
        "fi": "Lataa täsmälleen yksi vienti (allekirjoitettuine luetteloineen).",
    },
    "web_verified_ok": {"en": "Verified", "fi": "Tarkistettu"},
    "web_verified_failed": {"en": "Verification failed", "fi": "Tarkistus epäonnistui"},
    "web_verified_text": {
        "en": "{file}: {certificates} certificates, {checkpoints} checkpoints, signed by key "
        "{key}.",
        "fi": "{file}: {certificates} hävittämistodistusta, {checkpoints} tarkistuspistettä, "
        "allekirjoittanut avain {key}.",
    },
    "web_proofs": {"en": "Single-record proofs", "fi": "Yksittäisen tietueen todisteet"},
    "web_proofs_intro": {
        "en": "A proof that a data subject's certificates, or one record's, are in the signed "
        "ledger: a JSON file naming them by keyed reference only, which `retention verify` "
        "checks with nothing but the public key. Give a data subject, or a policy and the "
        "record's key (one value per key column, one per line).",
        "fi": "Todiste siitä, että rekisteröidyn tai yhden tietueen hävittämistodistukset ovat "
        "allekirjoitetussa kirjanpidossa: JSON-tiedosto, joka nimeää ne vain avainnetulla "
        "viitteellä ja jonka `retention verify` tarkistaa pelkällä julkisella avaimella. Anna "
        "rekisteröity tai käytäntö ja tietueen avain (yksi arvo avainsaraketta kohden, kukin "
        "omalle rivilleen).",
    },
    "web_prove_what": {
        "en": "Give a data subject, or a policy with the record's key.",
        "fi": "Anna rekisteröity tai käytäntö ja tietueen avain.",
    },
    "web_prove_button": {"en": "Download the proof", "fi": "Lataa todiste"},
    "web_error_400": {"en": "The form was not valid", "fi": "Lomake ei ollut kelvollinen"},
    "web_error_401": {"en": "Sign in first", "fi": "Kirjaudu ensin sisään"},
    "web_error_403": {
        "en": "Your role does not allow this",
        "fi": "Roolisi ei salli tätä toimintoa",
    },
    "web_error_404": {"en": "No such page or plan", "fi": "Sivua tai suunnitelmaa ei ole"},
    "web_error_405": {"en": "That is not how this page is used", "fi": "Sivua ei käytetä näin"},
    "web_error_413": {"en": "The upload is too large", "fi": "Ladattu tiedosto on liian suuri"},
    "web_error_500": {"en": "Something went wrong", "fi": "Jokin meni vikaan"},
    "web_error_csrf": {
        "en": "The form could not be trusted (it was changed, or sent from elsewhere)",
        "fi": "Lomakkeeseen ei voitu luottaa (sitä oli muutettu, tai se lähetettiin muualta)",
    },
    "web_error_session": {
        "en": "Your session has ended: sign in again",
        "fi": "Istuntosi on päättynyt: kirjaudu uudelleen",
    },
    "web_error_signin": {"en": "Sign-in failed", "fi": "Kirjautuminen epäonnistui"},
    "web_error_no_role": {
        "en": "Your account has no role in this workspace: ask its administrator",
        "fi": "Tunnuksellasi ei ole roolia tässä työtilassa: ota yhteys ylläpitäjään",
    },
    # Records-management plan (TOS, JHS 191): the drift section of check and plan reports
    "rp_section": {"en": "Records-management plan", "fi": "Tiedonohjaussuunnitelma"},
    "rp_plan": {
        "en": "{title}, TOS {tos} version {version} ({profile}), approved {approved}",
        "fi": "{title}, TOS {tos} versio {version} ({profile}), hyväksytty {approved}",
    },
    "rp_none_approved": {"en": "(no date)", "fi": "(ei päivämäärää)"},
    "rp_coverage": {
        "en": "{covered} of {total} record types holding personal data are enforced by an "
        "enabled policy.",
        "fi": "{covered}/{total} henkilötietoja sisältävästä asiakirjatyypistä on käytössä "
        "olevan säilytyssäännön piirissä.",
    },
    "rp_uncovered": {
        "en": "Record types holding personal data without an enabled policy",
        "fi": "Henkilötietoja sisältävät asiakirjatyypit ilman käytössä olevaa sääntöä",
    },
    "rp_findings": {"en": "Differences from the plan", "fi": "Poikkeamat suunnitelmasta"},
    "rp_no_findings": {
        "en": "Every policy follows the plan decision it cites.",
        "fi": "Jokainen säilytyssääntö noudattaa tiedonohjaussuunnitelman päätöstä, johon se "
        "viittaa.",
    },
    "rp_class": {"en": "Class", "fi": "Luokka"},
    "rp_record_type": {"en": "Record type", "fi": "Asiakirjatyyppi"},
    "rp_finding": {"en": "Finding", "fi": "Havainto"},
    "rp_deviation": {"en": "Stated deviation", "fi": "Perusteltu poikkeama"},
    "rp_severity_error": {"en": "error", "fi": "virhe"},
    "rp_severity_warning": {"en": "warning", "fi": "huomautus"},
    "rp_severity_deviation": {"en": "deviation", "fi": "poikkeama"},
    "drift_other_plan": {
        "en": "cites plan {cited}, but its register follows {plan} ({file})",
        "fi": "viittaa suunnitelmaan {cited}, mutta rekisteri noudattaa suunnitelmaa {plan} "
        "({file})",
    },
    "drift_not_in_plan_record": {
        "en": "cites record type {record} of class {code}, which the plan {plan} version "
        "{version} no longer has",
        "fi": "viittaa luokan {code} asiakirjatyyppiin {record}, jota suunnitelman {plan} "
        "versiossa {version} ei enää ole",
    },
    "drift_not_in_plan_class": {
        "en": "cites class {code}, which the plan {plan} version {version} no longer has",
        "fi": "viittaa luokkaan {code}, jota suunnitelman {plan} versiossa {version} ei enää ole",
    },
    "drift_permanence_destroys": {
        "en": "the plan keeps these records permanently; the policy would dispose of them "
        "({action}) — the engine will not",
        "fi": "suunnitelman mukaan tiedot säilytetään pysyvästi; sääntö hävittäisi ne "
        "({action}) — ohjelma ei hävitä niitä",
    },
    "drift_permanence_keeps": {
        "en": "the policy keeps permanently; the plan says {period}",
        "fi": "sääntö säilyttää pysyvästi; suunnitelman mukaan {period}",
    },
    "drift_until_unprovable": {
        "en": "until: is a fixed last day, but the plan keeps these records {period} from "
        "an event the rule does not read: the engine disposes of none of them until the "
        "rule counts from a trigger (trigger: and retain:)",
        "fi": "until: on kiinteä viimeinen päivä, mutta suunnitelma säilyttää tiedot {period} "
        "tapahtumasta, jota sääntö ei lue: ohjelma ei hävitä niitä, ennen kuin sääntö "
        "lasketaan käynnistäjästä (trigger: ja retain:)",
    },
    "drift_period_shorter": {
        "en": "retain {retain} is shorter than the plan's {period}: the engine keeps the "
        "records until the plan's period has passed",
        "fi": "säilytysaika {retain} on lyhyempi kuin suunnitelman {period}: ohjelma säilyttää "
        "tiedot suunnitelman säilytysajan loppuun",
    },
    "drift_period_longer": {
        "en": "retain {retain} is longer than the plan's {period}",
        "fi": "säilytysaika {retain} on pidempi kuin suunnitelman {period}",
    },
    "drift_start": {
        "en": "the plan now counts the period from “{start}”; the policy was bound for "
        "“{cited}”: check its trigger, then re-import the plan",
        "fi": "suunnitelma laskee säilytysajan nyt tapahtumasta ”{start}”; sääntö on sidottu "
        "tapahtumaan ”{cited}”: tarkista laukaisin ja tuo suunnitelma uudelleen",
    },
    "drift_legal_basis": {
        "en": "the plan now gives the retention reason “{reason}”; the policy cites "
        "“{cited}”: re-import the plan",
        "fi": "suunnitelman säilytysajan peruste on nyt ”{reason}”; sääntö viittaa "
        "perusteeseen ”{cited}”: tuo suunnitelma uudelleen",
    },
    "drift_unbound": {
        "en": "imported from the plan and not bound yet: lacks {lacks}; disabled until a "
        "person binds it",
        "fi": "tuotu suunnitelmasta mutta sitomatta: puuttuu {lacks}; ei käytössä ennen kuin "
        "se sidotaan",
    },
    "drift_expired": {
        "en": "the plan {plan} version {version} ({file}) ceased to be valid on {date} "
        "(VoimassaoloPaattyyPvm): import the plan now in force",
        "fi": "suunnitelman {plan} versio {version} ({file}) lakkasi olemasta voimassa {date} "
        "(VoimassaoloPaattyyPvm): tuo voimassa oleva suunnitelma",
    },
    "drift_class_expired": {
        "en": "class {code} of the plan {plan} ceased to be valid on {date}",
        "fi": "suunnitelman {plan} luokka {code} lakkasi olemasta voimassa {date}",
    },
    "cert_plan_class": {"en": "Records-management plan class", "fi": "Tehtäväluokka (TOS)"},
    "cert_no_plan_class": {
        "en": "policies citing no records-management plan",
        "fi": "säilytyssäännöt ilman viittausta tiedonohjaussuunnitelmaan",
    },
    # end of records-management plan
}


class Messages:
    """The report's strings in one language: ``t("title")``, ``t("approved", by=..., on=...)``."""

    def __init__(self, language: Language) -> None:
        self.language = language

    def __call__(self, message_id: str, **values: object) -> str:
        text = MESSAGES[message_id][self.language]
        return text.format(**values) if values else text

    def word(self, kind: str, value: str) -> str:
        """A plan value (an action, decision or status) in this language, or as it is."""
        entry = MESSAGES.get(f"{kind}_{value}")
        return entry[self.language] if entry else value

    def number(self, value: int) -> str:
        """1,234 in English; 1 234 (a no-break space) in Finnish."""
        grouped = f"{value:,}"
        return grouped.replace(",", "\u00a0") if self.language == "fi" else grouped


_ACTION_FI: Final = {
    "anonymise": "anonymisoidaan", "delete": "poistetaan", "archive": "siirretään arkistoon",
    "review": "tarkastetaan", "keep": "säilytetään",
}  # fmt: skip


def describe_rule_fi(policy: Policy) -> str:
    """:meth:`Policy.describe_rule` in Finnish: the rule in one sentence."""
    action = _ACTION_FI[policy.action]
    if policy.until is not None:
        return f"säilytetään {policy.until.isoformat()} asti, sitten {action}"
    if len(policy.trigger) == 1:
        column = f"sarakkeen {policy.trigger[0]}"
    else:
        which = "myöhäisimmän" if policy.trigger_rule == "latest" else "aikaisimman"
        column = f"sarakkeista {', '.join(policy.trigger)} {which}"
    year_end = policy.count_from == "year_end"
    start = f"{column} päivän vuoden lopusta" if year_end else f"{column} päivästä"
    then = ""
    if policy.then and policy.then != "keep":
        then = f", sen jälkeen {_ACTION_FI[policy.then]}"
    unless = "".join(f"; paitsi jos {_unless_fi(u)}" for u in policy.unless)
    assert policy.retain is not None  # a rule without until has trigger and retain
    if policy.retain.permanent or policy.retain.duration is None:
        return f"pysyvästi säilytettävä: {action} {start} alkaen{then}{unless}"
    return f"{_period_fi(policy.retain.duration)} {start}, sitten {action}{then}{unless}"


def _period_fi(duration: Duration) -> str:
    """P10Y6M as "10 vuotta 6 kuukautta", P0D as "0 päivää"."""
    parts = [
        f"{n} {one if n == 1 else many}"
        for n, one, many in (
            (duration.years, "vuosi", "vuotta"),
            (duration.months, "kuukausi", "kuukautta"),
            (duration.days, "päivä", "päivää"),
        )
        if n
    ]
    return " ".join(parts) or "0 päivää"


def _unless_fi(unless: Unless) -> str:
    if unless.not_empty:
        return f"{unless.column} ei ole tyhjä"
    if unless.in_ is not None:
        return f"{unless.column} on jokin arvoista {list(unless.in_)}"
    return f"{unless.column} = {unless.equals!r}"
