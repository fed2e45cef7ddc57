"""Whatever is sent to the federation and hub endpoints, the answer is never a 5xx."""

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation import keys

pytestmark = pytest.mark.anyio

odd = st.text(max_size=60) | st.sampled_from(
    ["-1", "0", "99999999999999999999999", "1e9", "\x00", "PT", "pt", "ÉÉ", "' OR 1=1", "*"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(after=odd, limit=odd, q=odd, country=odd, cursor=odd, record=odd)
async def test_odd_parameters_never_fail_the_server(
    client: httpx.AsyncClient,
    signing_key: keys.SigningKey,
    after: str,
    limit: str,
    q: str,
    country: str,
    cursor: str,
    record: str,
) -> None:
    for method, url, params in (
        ("GET", "/federation/v1/feed", {"after": after, "limit": limit}),
        ("GET", "/federation/v1/checkpoint", {}),
        ("GET", "/federation/v1/keys", {}),
        ("GET", "/api/v1/hub/search", {"q": q, "country": country, "kind": q, "cursor": cursor}),
        ("GET", f"/api/v1/hub/records/{quote(record or 'x', safe='')}", {}),
        ("GET", "/api/v1/federation/holds", {"status": q}),
    ):
        response = await client.request(method, url, params=params)
        assert response.status_code < 500, (url, params, response.text)
