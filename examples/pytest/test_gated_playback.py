"""Gated playback, played as a player would: a JWT-gated asset and a webhook-gated one."""

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VIDEO = Path(__file__).resolve().parents[2] / "fixtures" / "sample.mp4"  # any short video


def fetch(url, **headers):
    """The HTTP status a player gets for one media URL."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def gated_asset(lp, policy):
    body = {"name": "members only", "playbackPolicy": policy}
    status, created = lp.request("POST", "/api/asset/request-upload", body)
    assert status == 200, created
    put = urllib.request.Request(created["url"], data=VIDEO.read_bytes(), method="PUT")
    urllib.request.urlopen(put)
    return lp.wait_for_asset(created["asset"]["id"])


def test_a_jwt_gated_asset_plays_with_a_signed_token(livepeer_emulator):
    asset = gated_asset(livepeer_emulator, {"type": "jwt"})
    url = asset["playbackUrl"]
    assert fetch(url) == 401  # no token: refused, as by Livepeer's CDN

    # Signed with a signing key of this tenant, as your backend would sign it.
    token = livepeer_emulator.sign_playback_jwt(asset, expires_in=60)
    assert fetch(f"{url}?jwt={token}") == 200  # its playlists hand the token on
    assert fetch(url, **{"Livepeer-Jwt": token}) == 200  # or send it as a header

    livepeer_emulator.advance(60)  # tokens expire on the emulator's clock
    assert fetch(f"{url}?jwt={token}") == 403


class AccessWebhook(BaseHTTPRequestHandler):
    """Your access-control webhook: a 2xx lets the viewer play, anything else refuses."""

    def do_POST(self):
        gate = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        paid = gate["accessKey"] == "paid-viewer" and gate["context"]["plan"] == "gold"
        self.send_response(200 if paid else 403)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_gated_asset_asks_your_webhook(livepeer_emulator):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), AccessWebhook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        hook_url = f"http://127.0.0.1:{receiver.server_port}/access"
        status, hook = livepeer_emulator.request(
            "POST", "/api/webhook", {"name": "access", "url": hook_url, "events": []}
        )
        assert status == 201, hook
        policy = {"type": "webhook", "webhookId": hook["id"], "webhookContext": {"plan": "gold"}}
        url = gated_asset(livepeer_emulator, policy)["playbackUrl"]

        assert fetch(url) == 401  # no access key
        assert fetch(f"{url}?accessKey=paid-viewer") == 200
        assert fetch(url, **{"Livepeer-Access-Key": "someone-else"}) == 403
    finally:
        receiver.shutdown()
        receiver.server_close()
