"""`lifeboat dashboard` in a real browser: Debian's headless Chromium, driven by selenium through
/usr/bin/chromedriver, on the local cloud. The page loads, shows a failover in progress, and an operator's
approval (clicked, then confirmed) resumes a failback waiting for it, recorded under the operator's identity.

With LIFEBOAT_SCREENSHOTS=<folder> the test leaves its screenshots there (docs/dashboard.md shows two).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.failover import FailoverRequest, TriggerInfo
from chalicelib.services import failback_ops as ops
from lifeboat_cli import dashboard as web
from tests.e2e.test_demo import DEMO_TIMEOUT_S, demo_env, workdir  # noqa: F401 (a fixture)
from tests.integration.conftest import _iam_denials, local_cloud, stack  # noqa: F401 (fixtures)
from tests.integration.failback_helpers import (
    ON_PRIMARY,
    OPERATOR,
    deps,
    failed_over,
    ledger,
    stop_running,
    wait_until_waiting,
)
from tests.integration.stack import Stack

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# A failover started by alarms waits out this window: long enough to look at it in the browser.
STACK_SETTINGS = {"sustain": "10m"}
UI_TIMEOUT = 60.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium at a laptop's screen size."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        message = "Debian's chromium and chromium-driver are not installed (`make setup` installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1440,1000")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def dashboard(stack: Stack) -> Iterator[Any]:  # noqa: F811 (the fixture imported above)
    """`lifeboat dashboard` as the CLI starts it, on this local cloud, stopped afterwards."""
    served = web.start()
    try:
        yield served
    finally:
        served.stop()
        stop_running(stack)


def shot(driver: Any, name: str) -> None:
    folder = os.environ.get("LIFEBOAT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def text_of(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, selector))


def wait_for_text(driver: Any, selector: str, wanted: str, timeout: float = UI_TIMEOUT) -> str:
    """The text of `selector` once it contains `wanted` (the page refreshes itself: no reload here)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def has(d: Any) -> str | bool:
        try:
            text = text_of(d, selector)
        except StaleElementReferenceException:  # swapped by the refresh while being read
            return False
        return text if wanted in text else False

    try:
        return str(WebDriverWait(driver, timeout, poll_frequency=0.2).until(has))
    except TimeoutException:
        raise AssertionError(
            f"{selector!r} never showed {wanted!r} in {timeout}s; it shows {text_of(driver, selector)!r}"
        ) from None


def click(driver: Any, selector: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, UI_TIMEOUT).until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector))).click()


def test_the_page_shows_a_failover_in_progress(
    stack: Stack,  # noqa: F811
    dashboard: Any,
    browser: Any,
) -> None:
    # Given a failover that alarms started 30 s ago, waiting out the plan's sustain window
    stack.fresh()
    now = datetime.now(UTC)
    trigger = TriggerInfo(
        first_alarm_at=now - timedelta(seconds=30),
        quorum_since=now,
        sustain_until=now + timedelta(minutes=10),
    )
    request = FailoverRequest(
        workload=stack.plan.workload, reason="quorum met: 2 of 3 alarms in ALARM", trigger=trigger
    )
    name = f"failover-{stack.plan.workload}-e2e-{uuid.uuid4().hex[:6]}"
    deps().executions.start(stack.plan.workload, "failover", name, request.model_dump(mode="json"))
    # When the operator opens the dashboard
    assert dashboard.url.startswith("http://127.0.0.1:")
    assert dashboard._server.socket.getsockname()[0] == "127.0.0.1"  # loopback only
    browser.get(dashboard.url)
    # Then the workload's card shows where traffic is and the failover in progress, in words, with its clock
    assert "us-east-1 (primary) serves all traffic" in wait_for_text(browser, "[data-test=serving]", "serves")
    running = wait_for_text(browser, "[data-test=running]", "failover in progress")
    assert "waiting out the sustain window" in running
    assert "stage 1 of " in running and "RTO clock" in running
    shot(browser, "dashboard-overview.png")
    # And its own page tells the same, with its steps so far and the RTO clock against the objective
    click(browser, "[data-test=running]")
    assert "waiting out the sustain window" in wait_for_text(browser, "[data-test=phase]", "sustain")
    assert "to spare" in text_of(browser, "[data-test=clock]")
    assert "WaitSustain" in text_of(browser, "table.timeline")
    assert text_of(browser, "[data-test=status]") == "RUNNING"


def test_an_approval_click_resumes_a_failback(
    stack: Stack,  # noqa: F811
    dashboard: Any,
    browser: Any,
) -> None:
    # Given a workload failed over, and a failback that waits for an operator's approval
    failed_over(stack, approval_required="true", bake="1s")
    arn = ops.start_failback(stack.plan.workload, "primary restored", OPERATOR, deps()).execution_arn
    wait_until_waiting(arn, "approval")
    # When the operator opens the dashboard, follows the failback and clicks approve
    browser.get(dashboard.url)
    assert "waiting for approval" in wait_for_text(browser, "[data-test=running]", "failback in progress")
    click(browser, "[data-test=running]")
    wait_for_text(browser, "[data-test=waiting]", "Waiting for approval")
    assert "step 0 of 4" in text_of(browser, "[data-test=step]")
    shot(browser, "dashboard-approval.png")
    click(browser, "[data-action=approve]")
    # Then nothing happens before they confirm: the confirmation page says what approving does
    assert "Approve failback of" in text_of(browser, "h2")
    assert wait_until_waiting(arn, "approval").waiting_for == "approval"
    from selenium.webdriver.common.by import By

    browser.find_element(By.NAME, "reason").send_keys("primary checked by the SRE lead")
    click(browser, "[data-confirm=approve]")
    # And once confirmed, the page says it was approved and follows the failback to its end, live
    assert "approved: traffic starts moving back" in wait_for_text(browser, "[data-test=notice]", "approve")
    wait_for_text(browser, "[data-test=status]", "SUCCEEDED", timeout=180)
    assert f"step 4 of 4 (100% on {stack.plan.regions.primary})" in text_of(browser, "[data-test=step]")
    assert stack.weights() == ON_PRIMARY
    # And the approval is in the ledger under the dashboard operator's identity, with their reason
    approvals = [
        e for e in ledger(stack).entries(stack.plan.workload, limit=100) if e.outcome == "failback-approved"
    ]
    assert [(e.actor, e.reason, e.execution) for e in approvals] == [
        (web.operator_identity(), "primary checked by the SRE lead", arn)
    ]


@pytest.mark.timeout(DEMO_TIMEOUT_S + 180)
def test_the_demo_serves_its_story_on_the_dashboard(workdir: Path, browser: Any) -> None:  # noqa: F811
    # Given a user running `lifeboat demo --dashboard` in a folder holding the example plans
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifeboat_cli", "demo", "--dashboard"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=demo_env(workdir),
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        # When they open the address it prints
        deadline = time.monotonic() + 300
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", "".join(lines))
            url = found.group(1) if found else None
            time.sleep(0.2)
        assert url is not None, "".join(lines)[-3000:]
        browser.get(url)
        # Then the drill's failover and then its failback show up there while the demo tells them
        wait_for_text(browser, "[data-test=running]", "failover in progress", timeout=300)
        wait_for_text(browser, "[data-test=running]", "failback in progress", timeout=300)
        # And the demo runs to its end, then stops the dashboard and its local cloud. (Its verdicts are
        # test_demo's: on a loaded machine a smoke test's p95 may miss its budget and fail the drill, exit 1.)
        assert proc.wait(timeout=DEMO_TIMEOUT_S) in (0, 1), "".join(lines)[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(10)
    out = "".join(lines)
    assert "measured RTO" in out and "local cloud stopped" in out, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    with pytest.raises(OSError):  # the dashboard's port is closed
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))), timeout=2).close()
