"""The launcher's Query patch (moto/src/gaps.py) changes how fast moto answers, never what: every
Query below, page by page, gets the same answer from the launched server (patched) as from moto
itself in this process (not patched). Run by the test a_query_answers_as_unpatched_moto_does
(moto/src/lib.rs):

    python moto/tests/query_equivalence.py http://127.0.0.1:PORT
"""
import json
import random
import sys

import boto3
from moto import mock_aws

endpoint = sys.argv[1]
random.seed(7)
s = lambda v: {"S": v}
n = lambda v: {"N": str(v)}

TABLE = dict(
    TableName="records", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "GSI1PK", "GSI1SK")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[{"IndexName": "GSI1", "Projection": {"ProjectionType": "ALL"},
                             "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"},
                                           {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]}])
HASH_ONLY = dict(TableName="plain", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])

items = []
for c in range(40):
    pk = f"conn-{random.randrange(10 ** 6):06d}"
    items.append({"pk": s(pk), "sk": s("connection#"), "n": n(random.randrange(100))})
    for e in random.sample(range(12), random.randrange(6)):
        items.append({"pk": s(pk), "sk": s(f"subscription#order-{e}"), "GSI1PK": s(f"order-{e}"),
                      "GSI1SK": s("subscription#"), "n": n(random.randrange(100))})
plain = [{"id": s(f"id-{i:03d}"), "n": n(i)} for i in range(30)]
partitions = sorted({item["pk"]["S"] for item in items})

queries = []
for pk in partitions[:10] + ["nobody"]:
    for limit in (None, 1, 2, 5):
        for forward in (True, False):
            q = dict(TableName="records", KeyConditionExpression="pk = :p", ScanIndexForward=forward,
                     ExpressionAttributeValues={":p": s(pk)}, ConsistentRead=True)
            if limit:
                q["Limit"] = limit
            queries.append(q)
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                        ExpressionAttributeValues={":p": s(pk), ":b": s("subscription#")}, Limit=2))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", FilterExpression="n > :k",
                        ProjectionExpression="pk, sk", ExpressionAttributeValues={":p": s(pk), ":k": n(50)}, Limit=3))
for e in range(13):
    for limit in (None, 1, 3, 7):
        for forward in (True, False):
            q = dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward,
                     KeyConditionExpression="GSI1PK = :e AND GSI1SK = :s", ProjectionExpression="pk",
                     ExpressionAttributeValues={":e": s(f"order-{e}"), ":s": s("subscription#")})
            if limit:
                q["Limit"] = limit
            queries.append(q)
for i in (0, 7, 29, 31):
    queries.append(dict(TableName="plain", KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": s(f"id-{i:03d}")}))


def answers(db):
    for table in (TABLE, HASH_ONLY):
        db.create_table(**table)
    for item in items:
        db.put_item(TableName="records", Item=item)
    for item in plain:
        db.put_item(TableName="plain", Item=item)
    pages = []
    for q in queries:
        start = None
        while True:
            page = db.query(**q, **({"ExclusiveStartKey": start} if start else {}))
            pages.append({k: page.get(k) for k in ("Items", "Count", "ScannedCount", "LastEvaluatedKey")})
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    # A Scan still sees the whole table in moto's order (the patch applies during a Query only).
    pages.append(db.scan(TableName="records")["Items"])
    return pages


key = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
launched = answers(boto3.client("dynamodb", endpoint_url=endpoint, **key))
with mock_aws():
    unpatched = answers(boto3.client("dynamodb", **key))
assert len(launched) == len(unpatched)
for i, (a, b) in enumerate(zip(launched, unpatched)):
    assert a == b, f"answer {i} differs:\npatched   {json.dumps(a)[:2000]}\nunpatched {json.dumps(b)[:2000]}"
print(f"{len(queries)} queries, {len(launched)} pages: the same answers")
