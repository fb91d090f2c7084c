"""Lists at Studio's edges (issue 14, item 8): counts, cursors, order, filter errors.

Each test names the Studio code it follows (livepeer/studio @670a0a66,
packages/api/src/): controllers/asset.ts, task.ts and webhook.ts `app.get("/")`,
controllers/helpers.ts parseFilters/parseOrder, store/table.ts find.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from emulator.jsvalues import JsError, decode_uri_component, json_parse, parse_int
from tests.helpers import advance, create_upload, get_json

LISTS = ["/api/asset", "/api/task", "/api/webhook"]


async def _make(client: TestClient, auth: dict[str, str], path: str, n: int) -> list[str]:
    """n items in the list at `path` (each upload also makes one task); their ids."""
    ids = []
    for i in range(n):
        if path == "/api/webhook":
            body = {"name": f"hook{i}", "url": "http://127.0.0.1:9/", "events": ["asset.ready"]}
            resp = await client.post(path, json=body, headers=auth)
            assert resp.status == 201, await resp.text()
            ids.append((await resp.json())["id"])
        else:
            created = await create_upload(client, auth, f"clip{i}")
            ids.append(created["asset" if path == "/api/asset" else "task"]["id"])
        await advance(client, auth, 1)  # distinct createdAt values: a stable order
    return ids


async def _get(client: TestClient, path: str, auth: dict[str, str]) -> tuple[Any, Any]:
    resp = await client.get(path, headers=auth)
    assert resp.status == 200, await resp.text()
    return [d["id"] for d in await resp.json()], resp.headers


async def _error(client: TestClient, path: str, auth: dict[str, str]) -> tuple[int, list[str]]:
    resp = await client.get(path, headers=auth)
    return resp.status, (await resp.json())["errors"]


def _filters(text: str) -> str:
    return "filters=" + quote(text, safe="")


@pytest.mark.parametrize("path", LISTS)
async def test_total_count_only_on_a_page_with_rows(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    """asset.ts/task.ts/webhook.ts set X-Total-Count inside find's `process`, once per
    returned row, from `count(*) OVER()`: an empty page has none. `if (count)` takes
    any non-empty value ("0" too), never an empty one."""
    await _make(client, auth, path, 3)
    ids, headers = await _get(client, f"{path}?count=1&limit=2", auth)
    assert len(ids) == 2 and headers["X-Total-Count"] == "3"
    ids, headers = await _get(client, f"{path}?count=1&cursor=skip3", auth)
    assert ids == [] and "X-Total-Count" not in headers
    ids, headers = await _get(client, f"{path}?count=0", auth)
    assert headers["X-Total-Count"] == "3"
    ids, headers = await _get(client, f"{path}?count=", auth)
    assert len(ids) == 3 and "X-Total-Count" not in headers
    # Nothing matches the filter: no rows, no count.
    ids, headers = await _get(
        client, f"{path}?count=1&" + _filters('[{"id":"id","value":"x"}]'), auth
    )
    assert ids == [] and "X-Total-Count" not in headers


@pytest.mark.parametrize("path", LISTS)
async def test_a_cursor_without_skip_is_an_id(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    """table.ts find: `if (cursor && !cursor.includes("skip"))` adds `data->>'id' >
    ${cursor}`; a cursor containing "skip" anywhere is `OFFSET cursor.replace("skip",
    "")`. The count covers the rows after the id; Link stays skip<offset+limit>."""
    ids = sorted(await _make(client, auth, path, 4))
    got, headers = await _get(client, f"{path}?order=id-false&count=1&cursor={ids[1]}", auth)
    assert got == ids[2:] and headers["X-Total-Count"] == "2"
    got, headers = await _get(client, f"{path}?order=id-false&limit=1&cursor={ids[0]}", auth)
    assert got == [ids[1]]
    assert headers["Link"].endswith('cursor=skip1>; rel="next"')  # as Studio's newCursor
    got, _ = await _get(client, f"{path}?order=id-false&cursor=1skip", auth)  # OFFSET '1'
    assert got == ids[1:]
    got, _ = await _get(client, f"{path}?cursor=zzz", auth)  # no uuid sorts after it
    assert got == []


@pytest.mark.parametrize("path", LISTS)
async def test_an_offset_postgres_cannot_read_is_a_400(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    """table.ts find sends the rest of a skip cursor as `OFFSET`: Postgres refuses what is
    not a non-negative bigint, and errorHandler.ts answers `Internal server error:
    <err.name>` (node-postgres names its errors "error"). Studio answers 500 there; the
    emulator answers 400 saying what is wrong, as bad input never gets a 500 here."""
    for cursor, wrong in (
        ("skip", "not a whole number of rows to skip"),
        ("skipabc", "not a whole number of rows to skip"),
        ("skip1.5", "not a whole number of rows to skip"),
        ("skip-1", "a negative number of rows to skip"),
        ("skip99999999999999999999", "more rows to skip than a bigint holds"),
        ("skip9223372036854775808", "more rows to skip than a bigint holds"),
    ):
        assert await _error(client, f"{path}?cursor={cursor}", auth) == (
            400,
            [f'invalid cursor "{cursor}": {wrong}'],
        ), cursor
    long = "skip" + "x" * 100
    assert await _error(client, f"{path}?cursor={long}", auth) == (
        400,
        [f'invalid cursor "{long[:40]}…": not a whole number of rows to skip'],
    )
    got, _ = await _get(client, f"{path}?cursor=skip9223372036854775807", auth)
    assert got == []  # the largest bigint
    got, _ = await _get(client, f"{path}?cursor=skip%20007%20", auth)  # bigint's spaces
    assert got == []


@pytest.mark.parametrize("path", LISTS)
async def test_an_order_parseorder_cannot_read_is_id_ascending(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    """helpers.ts parseOrder keeps `field-true` (DESC) and `field-<other>` (ASC) parts
    naming a field; with none left it returns undefined and table.ts find uses its
    DEFAULT_SORT `id ASC`."""
    ids = await _make(client, auth, path, 4)
    for order in ("bogus", "createdAt", "createdAt-true-x", " createdAt-true", "phase-true"):
        if order == "phase-true" and path == "/api/asset":
            continue  # assets do have a phase
        got, _ = await _get(client, f"{path}?order={quote(order)}", auth)
        assert got == sorted(ids), order
    got, _ = await _get(client, f"{path}?order=createdAt-TRUE", auth)  # not "true": ASC
    assert got == ids
    got, _ = await _get(client, f"{path}?order=bogus,createdAt-true", auth)
    assert got == ids[::-1]


async def test_webhook_lists_default_to_id_order(client: TestClient, auth: dict[str, str]) -> None:
    """webhook.ts never defaults `order` (asset.ts and task.ts use
    "updatedAt-true,createdAt-true"): parseOrder(undefined) leaves table.ts's `id ASC`."""
    ids = await _make(client, auth, "/api/webhook", 5)
    got, _ = await _get(client, "/api/webhook", auth)
    assert got == sorted(ids)
    assets = await _make(client, auth, "/api/asset", 3)
    got, _ = await _get(client, "/api/asset", auth)
    assert got == assets[::-1]  # newest first


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ('[{"id":"colour","value":1}]', 'Error: unknown field: "colour"'),
        ('[{"value":1}]', 'Error: unknown field: "undefined"'),
        ('[{"id":["id","x"],"value":1}]', 'Error: unknown field: "id,x"'),
        ('[{"id":"name"}]', 'Error: missing filter value for id "name"'),
        ("[[1]]", 'Error: missing filter value for id "undefined"'),
        ('{"id":"name","value":"x"}', "Error: must be an array"),
        ("[null]", "TypeError: Cannot read properties of null (reading 'id')"),
        ('["abc"]', "TypeError: Cannot use 'in' operator to search for 'value' in abc"),
        ("[1e21]", "TypeError: Cannot use 'in' operator to search for 'value' in 1e+21"),
        ('[{"id":"createdAt","value":{"eq":5}}]', 'Error: unknown comparison: "eq"'),
        ("not-json", "SyntaxError: Unexpected token o in JSON at position 1"),
        ('[{"id" "name"}]', "SyntaxError: Unexpected string in JSON at position 7"),
        ('[{"id":"name","value":01}]', "SyntaxError: Unexpected number in JSON at position 23"),
        ("[", "SyntaxError: Unexpected end of JSON input"),
        ("100%", "URIError: URI malformed"),
    ],
)
async def test_filter_errors_in_studios_words(
    client: TestClient, auth: dict[str, str], path: str, filters: str, message: str
) -> None:
    """helpers.ts parseFilters: `JSON.parse(decodeURIComponent(val))`, then per filter
    `fieldsMap[filter.id]`, `"value" in filter`, the field; any exception becomes 400
    `error parsing filters: ${e}` (JSON.parse's wording as Node 18 words it)."""
    status, errors = await _error(client, f"{path}?{_filters(filters)}", auth)
    assert (status, errors) == (400, [f"error parsing filters: {message}"])


async def test_fields_are_each_lists_own(client: TestClient, auth: dict[str, str]) -> None:
    """The fieldsMap of task.ts has no phase; webhook.ts has no updatedAt; asset.ts has
    cid and sourceAssetId. Object.prototype's names (`fieldsMap["constructor"]`) are
    skipped without an error; `user.email` needs the users join only admin lists have,
    so Postgres fails. Studio answers 500 there; the emulator answers 400 naming the
    field, as bad input never gets a 500 here."""
    await _make(client, auth, "/api/asset", 2)
    hook = await _make(client, auth, "/api/webhook", 1)
    flt = _filters('[{"id":"phase","value":"pending"}]')
    assert await _error(client, f"/api/task?{flt}", auth) == (
        400,
        ['error parsing filters: Error: unknown field: "phase"'],
    )
    flt = _filters('[{"id":"updatedAt","value":1}]')
    assert await _error(client, f"/api/webhook?{flt}", auth) == (
        400,
        ['error parsing filters: Error: unknown field: "updatedAt"'],
    )
    for field in ("cid", "sourceAssetId", "nftMetadataCid", "objectStoreId"):
        flt = _filters(json.dumps([{"id": field, "value": "x"}]))
        got, _ = await _get(client, f"/api/asset?{flt}", auth)
        assert got == [], field
    got, _ = await _get(
        client, "/api/webhook?" + _filters('[{"id":"blocking","value":true}]'), auth
    )
    assert got == []
    got, _ = await _get(
        client, "/api/webhook?" + _filters('[{"id":"sharedSecret","value":"x"}]'), auth
    )
    assert got == []
    got, _ = await _get(
        client, "/api/webhook?" + _filters('[{"id":"url","value":"http://127.0.0.1:9/"}]'), auth
    )
    assert got == hook
    got, _ = await _get(client, "/api/asset?" + _filters('[{"id":"constructor","value":1}]'), auth)
    assert len(got) == 2
    no_users = 'unknown field: "user.email" (Studio has it in admin lists only)'
    for query, message in (
        (_filters('[{"id":"user.email","value":"a"}]'), f"error parsing filters: {no_users}"),
        ("order=user.email-true", f"error parsing order: {no_users}"),
        ("order=createdAt-true,user.email-false", f"error parsing order: {no_users}"),
    ):
        for path in LISTS:
            assert await _error(client, f"{path}?{query}", auth) == (400, [message]), (
                path,
                query,
            )
    # Studio's own 400s come first: parseFilters fails before Postgres runs anything.
    flt = _filters('[{"id":"user.email","value":"a"},{"id":"colour","value":1}]')
    assert await _error(client, f"/api/asset?{flt}", auth) == (
        400,
        ['error parsing filters: Error: unknown field: "colour"'],
    )


async def test_filter_values_as_postgres_compares_them(
    client: TestClient, auth: dict[str, str]
) -> None:
    """helpers.ts parseFilters: a full-text field is `ILIKE ${"%" + value + "%"}` (its %
    and _ stay wildcards); a plain field `= ${value}` as node-postgres sends it (text); an
    int field compares jsonb, so a string that is no JSON fails in Postgres. Studio answers
    500 there; the emulator answers 400 naming the field and value, as bad input never
    gets a 500 here."""
    a = (await create_upload(client, auth, "abc"))["asset"]
    b = (await create_upload(client, auth, "a_c"))["asset"]

    async def ids(flt: str) -> list[str]:
        return sorted((await _get(client, "/api/asset?" + _filters(flt), auth))[0])

    assert await ids('[{"id":"name","value":"a_c"}]') == sorted([a["id"], b["id"]])
    assert await ids('[{"id":"name","value":"A\\\\_C"}]') == [b["id"]]
    # parseFilters decodes the query value once more: "%25" reaches ILIKE as "%".
    assert await ids('[{"id":"name","value":"%25"}]') == sorted([a["id"], b["id"]])
    assert await ids('[{"id":"createdAt","value":"' + str(a["createdAt"]) + '"}]') == sorted(
        [d["id"] for d in (a, b) if d["createdAt"] == a["createdAt"]]
    )
    assert await ids('[{"id":"createdAt","value":{"gt":null}}]') == []  # `> NULL`
    assert await ids('[{"id":"createdAt","value":{"gt":"null"}}]') == sorted([a["id"], b["id"]])
    assert await ids('[{"id":"playbackId","value":null}]') == []
    flt = _filters('[{"id":"createdAt","value":"soon"}]')
    assert await _error(client, f"/api/asset?{flt}", auth) == (
        400,
        [
            'error parsing filters: createdAt takes a number or {"gt"|"gte"|"lt"|"lte": '
            'number}, not "soon"'
        ],
    )
    flt = _filters('[{"id":"updatedAt","value":{"gte":1,"lt":[1,2]}}]')
    assert await _error(client, f"/api/asset?{flt}", auth) == (
        400,
        ["error parsing filters: updatedAt.lt takes a number, not [1,2]"],
    )
    flt = _filters('[{"id":"name","value":"a\\u0000"}]')
    assert await _error(client, f"/api/asset?{flt}", auth) == (
        400,
        ['error parsing filters: name cannot contain a NUL character ("\\u0000")'],
    )
    flt = _filters('[{"id":"blocking","value":"maybe"}]')
    assert await _error(client, f"/api/webhook?{flt}", auth) == (
        400,
        ['error parsing filters: blocking takes true or false, not "maybe"'],
    )


async def test_asset_shortcuts_are_filters_too(client: TestClient, auth: dict[str, str]) -> None:
    """asset.ts: ?playbackId, ?sourceUrl and ?phase are picked when present, even empty,
    decoded once more (decodeURIComponent outside any try: a 500 when it throws), and go
    through parseFilters as JSON. Studio's 500 becomes a 400 naming the parameter here,
    as bad input never gets a 500 from the emulator."""
    created = (await create_upload(client, auth, "clip"))["asset"]
    got, _ = await _get(client, "/api/asset?phase=", auth)
    assert got == []
    got, _ = await _get(client, f"/api/asset?phase={created['status']['phase']}", auth)
    assert got == [created["id"]]
    assert await _error(client, "/api/asset?sourceUrl=100%25", auth) == (
        400,
        ["error parsing sourceUrl: URIError: URI malformed"],
    )
    # Decoded twice, inside parseFilters the second time: Studio's own 400.
    assert await _error(client, "/api/asset?playbackId=100%2525", auth) == (
        400,
        ["error parsing filters: URIError: URI malformed"],
    )
    assert await _error(client, "/api/asset?phase=%00", auth) == (
        400,
        ['error parsing phase: phase cannot contain a NUL character ("\\u0000")'],
    )
    # Unknown query names are not filters; on tasks and webhooks these are not either.
    got, _ = await _get(client, "/api/task?phase=nothing", auth)
    assert len(got) == 1


async def test_limit_is_read_by_parseint(client: TestClient, auth: dict[str, str]) -> None:
    """asset.ts `isNaN(parseInt(limit))`, then table.ts parseLimit: parseInt reads the
    leading number ("2abc" is 2, "0x3" is 3), below 1 or none is 20, at most 1000."""
    await _make(client, auth, "/api/asset", 5)
    for limit, count in (("2abc", 2), ("0x3", 3), (" 4", 4), ("-1", 5), ("abc", 5), ("1e3", 1)):
        got, _ = await _get(client, f"/api/asset?limit={quote(limit)}", auth)
        assert len(got) == count, limit
    assert len(await get_json(client, "/api/task?limit=3.9", auth)) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Unexpected end of JSON input"),
        ("{a}", "Unexpected token a in JSON at position 1"),
        ('{"a":1,}', "Unexpected token } in JSON at position 7"),
        ("[1,]", "Unexpected token ] in JSON at position 3"),
        ('{"a" 1}', "Unexpected number in JSON at position 5"),
        ('["a" "b"]', "Unexpected string in JSON at position 5"),
        ("01", "Unexpected number in JSON at position 1"),
        ("-", "Unexpected end of JSON input"),
        ("1.a", "Unexpected token a in JSON at position 2"),
        ("trux", "Unexpected token x in JSON at position 3"),
        ('["\\x"]', "Unexpected token x in JSON at position 3"),
        ('["\\u12"]', "Unexpected string in JSON at position 6"),
        ('"\t"', "Unexpected token \t in JSON at position 1"),
        ("[] x", "Unexpected token x in JSON at position 3"),
        ('["😀" x]', "Unexpected token x in JSON at position 6"),  # UTF-16 positions
        ("NaN", "Unexpected token N in JSON at position 0"),
    ],
)
def test_json_parse_words_errors_as_node_18(text: str, message: str) -> None:
    """V8 10.2's JsonParser (Node 18, Studio's Dockerfile `FROM node:18`): the token at
    the cursor, "Unexpected number"/"Unexpected string" for those tokens."""
    with pytest.raises(JsError) as caught:
        json_parse(text)
    assert (caught.value.name, caught.value.message) == ("SyntaxError", message)


def test_javascript_helpers() -> None:
    """decodeURIComponent and parseInt as helpers.ts and asset.ts call them."""
    assert json_parse('[{"a":1.5,"b":[true,null]},"\\ud83d\\ude00"]') == [
        {"a": 1.5, "b": [True, None]},
        "😀",
    ]
    assert decode_uri_component("a%20%F0%9F%98%80") == "a 😀"
    for bad in ("%", "%zz", "%C0%80", "%ED%A0%80", "%80"):
        with pytest.raises(JsError):
            decode_uri_component(bad)
    assert [parse_int(t) for t in ("12abc", "0x1f", "\u00a0-3", "", "x")] == [
        12,
        31,
        -3,
        None,
        None,
    ]
