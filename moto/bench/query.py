"""How long moto takes to answer the handlers' Queries on a table the shape of wsstack's with N
subscribers of one entity (each subscriber: a connection record and a subscription record, as the
handlers write them): the push handler's GSI1 Query (all pages, three times: the median) and
$disconnect's Query of one connection's records. Run against a moto server at $ENDPOINT, with and
without moto/src/gaps.py on its PYTHONPATH (the launcher puts it there as sitecustomize.py), to see
what the patch changes.

    python moto/bench/query.py http://127.0.0.1:PORT 15000
"""
import sys
import time

import boto3

endpoint, n = sys.argv[1], int(sys.argv[2])
db = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
table = f"bench-{n}-{int(time.time())}"
s = lambda v: {"S": v}
db.create_table(
    TableName=table, BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                          for a in ("pk", "sk", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[
        {"IndexName": "GSI1", "Projection": {"ProjectionType": "ALL"},
         "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]},
        {"IndexName": "GSI2", "Projection": {"ProjectionType": "KEYS_ONLY"},
         "KeySchema": [{"AttributeName": "GSI2PK", "KeyType": "HASH"}, {"AttributeName": "GSI2SK", "KeyType": "RANGE"}]},
    ])
started = time.time()
requests = []
for i in range(n):
    c = f"conn{i:06d}="
    requests.append({"PutRequest": {"Item": {"pk": s(c), "sk": s("connection#"), "ipAddress": s("127.0.0.1"),
                                             "connectedAt": {"N": "1"}, "ttl": {"N": "9999999999"}}}})
    requests.append({"PutRequest": {"Item": {"pk": s(c), "sk": s("subscription#order-42"), "GSI1PK": s("order-42"),
                                             "GSI1SK": s("subscription#"), "ttl": {"N": "9999999999"}}}})
for i in range(0, len(requests), 25):
    db.batch_write_item(RequestItems={table: requests[i:i + 25]})
print(f"{2 * n} items written in {time.time() - started:.1f} s")


# How much of a Query's time is moto's (request sent to answer read), the rest being boto3's in
# this process (building the request, parsing the answer).
waited = []
db.meta.events.register("before-send.dynamodb.Query", lambda **_: waited.append(-time.time()))
db.meta.events.register("before-parse.dynamodb.Query", lambda **_: waited.append(time.time()))


def subscribers():
    found, pages, start = [], 0, None
    while True:
        args = dict(TableName=table, IndexName="GSI1", KeyConditionExpression="#p = :p AND #s = :s",
                    ProjectionExpression="#k", ExpressionAttributeNames={"#p": "GSI1PK", "#s": "GSI1SK", "#k": "pk"},
                    ExpressionAttributeValues={":p": s("order-42"), ":s": s("subscription#")})
        if start:
            args["ExclusiveStartKey"] = start
        page = db.query(**args)
        pages += 1
        found += [item["pk"]["S"] for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return found, pages


def records_of(c):
    return db.query(TableName=table, KeyConditionExpression="#p = :p", ConsistentRead=True,
                    ProjectionExpression="#p, #s", ExpressionAttributeNames={"#p": "pk", "#s": "sk"},
                    ExpressionAttributeValues={":p": s(c)})["Items"]


gsi_runs = []
for _ in range(3):
    waited.clear()
    t = time.time()
    found, pages = subscribers()
    gsi_runs.append((time.time() - t, sum(waited)))
    assert sorted(found) == [f"conn{i:06d}=" for i in range(n)], "every subscriber, once"
gsi, in_moto = sorted(gsi_runs)[1]
t = time.time()
for i in range(0, n, max(1, n // 100)):
    assert len(records_of(f"conn{i:06d}=")) == 2
per_connection = (time.time() - t) / len(range(0, n, max(1, n // 100)))
print(f"GSI1 query of {n} subscribers: {gsi * 1000:.0f} ms in {pages} pages, {in_moto * 1000:.0f} ms of it in moto "
      f"(median of {', '.join(f'{r * 1000:.0f}' for r, _ in gsi_runs)} ms); "
      f"one connection's records: {per_connection * 1000:.1f} ms")
db.delete_table(TableName=table)
