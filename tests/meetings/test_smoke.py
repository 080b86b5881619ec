async def test_create_and_get(client):
    r = await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})
    assert r.status_code == 201, r.text
    r2 = await client.get(f"/meetings/{r.json()['meetingId']}")
    assert r2.json() == r.json()
