import httpx


async def test_create_and_get_customer(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/customers", json={"source": "crm", "external_id": "1", "name": "上海华锐科技有限公司"}
    )
    assert created.status_code == 201, created.text
    got = await client.get(f"/v1/customers/{created.json()['id']}")
    assert got.json()["name"] == "上海华锐科技有限公司"
    assert got.headers["etag"] == '"1"'
