"""The launcher's Query patch (moto/src/gaps.py) changes how fast moto answers, never what: every
Query below, page by page, gets the same answer from the launched server (patched) as from moto
itself in this process (not patched): the same HTTP status and the same bytes of the body (items,
their order and attributes, Count, ScannedCount, LastEvaluatedKey, ConsumedCapacity, or the error;
where a set of strings or binary values is projected, its members in any order, as moto's Python
sets order them differently in each process).
Run by the test a_query_answers_as_unpatched_moto_does (moto/src/lib.rs):

    python moto/tests/query_equivalence.py http://127.0.0.1:PORT

What it asks: the handlers' own Query shapes (one connection's records, an entity's subscribers on
GSI1, a stream's history between two sequence numbers), table and index Queries paged at limits 1
to 7 in both directions, with filters, projections (of strings, numbers, booleans, nulls, sets,
lists, maps, binary, nested paths, list elements, missing names), Select COUNT, consumed capacity,
exclusive start keys of its own (between items, past the end, of another partition, of the wrong
type, missing a key), pages cut at moto's 1 MB (items of 100,000 bytes, multi-byte characters),
number and binary sort keys, KEYS_ONLY and INCLUDE indexes, the legacy KeyConditions and QueryFilter,
and requests moto refuses.
"""
import base64
import json
import random
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

endpoint = sys.argv[1]
random.seed(7)
s = lambda v: {"S": v}
n = lambda v: {"N": str(v)}

TABLE = dict(
    TableName="records", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                          for a in ("pk", "sk", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[
        {"IndexName": "GSI1", "Projection": {"ProjectionType": "ALL"},
         "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]},
        {"IndexName": "GSI2", "Projection": {"ProjectionType": "KEYS_ONLY"},
         "KeySchema": [{"AttributeName": "GSI2PK", "KeyType": "HASH"}, {"AttributeName": "GSI2SK", "KeyType": "RANGE"}]},
        {"IndexName": "GSI3", "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n", "tags"]},
         "KeySchema": [{"AttributeName": "GSI2PK", "KeyType": "HASH"}]},
    ])
HASH_ONLY = dict(TableName="plain", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
NUMBERS = dict(TableName="numbers", BillingMode="PAY_PER_REQUEST",
               AttributeDefinitions=[{"AttributeName": "p", "AttributeType": "S"},
                                     {"AttributeName": "seq", "AttributeType": "N"},
                                     {"AttributeName": "b", "AttributeType": "B"}],
               KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
               GlobalSecondaryIndexes=[{"IndexName": "byB", "Projection": {"ProjectionType": "ALL"},
                                        "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"},
                                                      {"AttributeName": "b", "KeyType": "RANGE"}]}])

# Connections and their subscriptions, as the handlers write them, with attributes of every type.
items = []
for c in range(40):
    pk = f"conn-{random.randrange(10 ** 6):06d}"
    user = f"user-{random.randrange(5)}"
    items.append({"pk": s(pk), "sk": s("connection#"), "n": n(random.randrange(100)), "GSI2PK": s(user),
                  "GSI2SK": s(pk), "ok": {"BOOL": random.random() < 0.5}, "none": {"NULL": True},
                  "tags": {"SS": ["a", "b"][:random.randrange(1, 3)]}, "nums": {"NS": ["1", "2.5", "10"]},
                  "l": {"L": [s("x"), n(1), {"M": {"k": s("v")}}]}, "m": {"M": {"a": s("é"), "b": n("1.50")}},
                  "bin": {"B": base64.b64encode(bytes([c, 0, 255]))}, "f": n(random.choice(["1e2", "0.10", "-0", "007"])),
                  "ttl": n(9999999999)})
    for e in random.sample(range(12), random.randrange(6)):
        items.append({"pk": s(pk), "sk": s(f"subscription#order-{e}"), "GSI1PK": s(f"order-{e}"),
                      "GSI1SK": s("subscription#"), "n": n(random.randrange(100)), "ttl": n(9999999999)})
    for seq in range(random.randrange(4)):
        items.append({"pk": s(f"stream#{pk}"), "sk": s(f"seq#{seq:020d}"), "frame": s("x" * random.randrange(50)),
                      "expiresAt": n(2000000000 + seq)})
# Pages cut by size: items of exactly 100,000 bytes as moto counts them (names and values, UTF-8),
# ten to a megabyte, so the eleventh crosses it; then items of uneven sizes and multi-byte text.
for i in range(23):
    item = {"pk": s("big"), "sk": s(f"item#{i:03d}"), "GSI1PK": s("big-entity"), "GSI1SK": s("subscription#"),
            "n": n(i)}
    used = sum(len(k) + len(next(iter(v.values()))) for k, v in item.items())
    item["blob"] = s("y" * (100000 - used - len("blob")))
    items.append(item)
for i in range(30):
    text = "é" * random.randrange(20000, 60000) if i % 3 else "z" * random.randrange(50000, 150000)
    items.append({"pk": s("uneven"), "sk": s(f"item#{i:03d}"), "GSI1PK": s("uneven-entity"),
                  "GSI1SK": s(f"subscription#{i % 4}"), "text": s(text), "n": n(i)})
plain = [{"id": s(f"id-{i:03d}"), "n": n(i)} for i in range(30)]
numbered = []
for i, seq in enumerate(["1", "2", "10", "-3", "1.5", "0.25", "1e2", "99999999999999999999", "-0.5", "3"]):
    numbered.append({"p": s("n"), "seq": n(seq), "b": {"B": bytes([i * 37 % 256, i])}, "v": n(seq)})
partitions = sorted({item["pk"]["S"] for item in items if item["pk"]["S"].startswith("conn-")})
users = sorted({item["GSI2PK"]["S"] for item in items if "GSI2PK" in item})

queries = []
for pk in partitions[:10] + ["nobody"]:
    for limit in (None, 1, 2, 5):
        for forward in (True, False):
            q = dict(TableName="records", KeyConditionExpression="pk = :p", ScanIndexForward=forward,
                     ExpressionAttributeValues={":p": s(pk)}, ConsistentRead=True)
            if limit:
                q["Limit"] = limit
            queries.append(q)
    # $disconnect's and unsubscribe's Query of one connection's records (store.rs).
    for limit in (None, 1):
        q = dict(TableName="records", KeyConditionExpression="#pk = :pk", ProjectionExpression="#pk, #sk",
                 ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"}, ExpressionAttributeValues={":pk": s(pk)},
                 ConsistentRead=True)
        if limit:
            q["Limit"] = limit
        queries.append(q)
    # A stream's history between two sequence numbers (history.rs).
    queries.append(dict(TableName="records", KeyConditionExpression="#pk = :pk AND #sk BETWEEN :first AND :last",
                        ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"}, ConsistentRead=True,
                        ExpressionAttributeValues={":pk": s(f"stream#{pk}"), ":first": s(f"seq#{1:020d}"),
                                                   ":last": s(f"seq#{2:020d}")}))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                        ExpressionAttributeValues={":p": s(pk), ":b": s("subscription#")}, Limit=2))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p AND sk > :b", ScanIndexForward=False,
                        ExpressionAttributeValues={":p": s(pk), ":b": s("subscription#order-3")}, Limit=1))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", FilterExpression="n > :k",
                        ProjectionExpression="pk, sk", ExpressionAttributeValues={":p": s(pk), ":k": n(50)}, Limit=3))
    # Projections of every type, nested paths, list elements, missing and repeated names.
    for projection in ("pk, n, ok, #none, tags, nums, l, m, bin, f, ttl", "m.a, l[2].k, l[0], nope", "f, f, pk",
                       "tags", "nums, n"):
        queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", ProjectionExpression=projection,
                            ExpressionAttributeValues={":p": s(pk)},
                            **({"ExpressionAttributeNames": {"#none": "none"}} if "#none" in projection else {})))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", Select="COUNT",
                        ExpressionAttributeValues={":p": s(pk)}, Limit=3))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", ReturnConsumedCapacity="TOTAL",
                        FilterExpression="attribute_exists(GSI1PK) OR ok = :t", ProjectionExpression="sk, ok",
                        ExpressionAttributeValues={":p": s(pk), ":t": {"BOOL": True}}))
    queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", ReturnConsumedCapacity="INDEXES",
                        ExpressionAttributeValues={":p": s(pk)}, Limit=2))
for e in list(range(13)) + ["big-entity", "uneven-entity"]:
    entity = e if isinstance(e, str) else f"order-{e}"
    for limit in (None, 1, 3, 7):
        for forward in (True, False):
            # The push handler's Query of an entity's subscribers (store.rs).
            q = dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward,
                     KeyConditionExpression="#gpk = :partition AND #gsk = :sort", ProjectionExpression="#pk",
                     ExpressionAttributeNames={"#gpk": "GSI1PK", "#gsk": "GSI1SK", "#pk": "pk"},
                     ExpressionAttributeValues={":partition": s(entity), ":sort": s("subscription#")})
            if limit:
                q["Limit"] = limit
            queries.append(q)
    for forward in (True, False):
        queries.append(dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward,
                            KeyConditionExpression="GSI1PK = :e AND begins_with(GSI1SK, :s)",
                            ExpressionAttributeValues={":e": s(entity), ":s": s("subscription#")}))
        queries.append(dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward, Limit=4,
                            KeyConditionExpression="GSI1PK = :e", FilterExpression="n < :k",
                            ExpressionAttributeValues={":e": s(entity), ":k": n(8)}))
        queries.append(dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward, Select="COUNT",
                            KeyConditionExpression="GSI1PK = :e", ReturnConsumedCapacity="INDEXES",
                            ExpressionAttributeValues={":e": s(entity)}))
for user in users + ["nobody"]:
    for forward in (True, False):
        queries.append(dict(TableName="records", IndexName="GSI2", ScanIndexForward=forward, Limit=3,
                            KeyConditionExpression="GSI2PK = :u", ExpressionAttributeValues={":u": s(user)}))
        queries.append(dict(TableName="records", IndexName="GSI3", ScanIndexForward=forward, Limit=2,
                            KeyConditionExpression="GSI2PK = :u", ExpressionAttributeValues={":u": s(user)}))
        queries.append(dict(TableName="records", IndexName="GSI3", ScanIndexForward=forward,
                            KeyConditionExpression="GSI2PK = :u", ProjectionExpression="pk, tags",
                            FilterExpression="n >= :k", ExpressionAttributeValues={":u": s(user), ":k": n(30)}))
# Pages cut at 1 MB, whole items and projected ones, both directions.
for pk in ("big", "uneven"):
    for forward in (True, False):
        queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", ScanIndexForward=forward,
                            ExpressionAttributeValues={":p": s(pk)}))
        queries.append(dict(TableName="records", KeyConditionExpression="pk = :p", ScanIndexForward=forward,
                            ProjectionExpression="sk, n", ExpressionAttributeValues={":p": s(pk)}))
        queries.append(dict(TableName="records", KeyConditionExpression="pk = :p AND sk >= :from",
                            ScanIndexForward=forward, FilterExpression="n > :k", Limit=15,
                            ExpressionAttributeValues={":p": s(pk), ":from": s("item#005"), ":k": n(3)}))
for i in (0, 7, 29, 31):
    queries.append(dict(TableName="plain", KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": s(f"id-{i:03d}")}))
# Number and binary sort keys: moto sorts numbers as numbers (10 after 9, 1e2 as 100).
for forward in (True, False):
    for limit in (None, 1, 3):
        q = dict(TableName="numbers", KeyConditionExpression="p = :p", ScanIndexForward=forward, ProjectionExpression="seq, v",
                 ExpressionAttributeValues={":p": s("n")})
        if limit:
            q["Limit"] = limit
        queries.append(q)
        q = dict(TableName="numbers", IndexName="byB", KeyConditionExpression="p = :p", ScanIndexForward=forward,
                 ExpressionAttributeValues={":p": s("n")})
        if limit:
            q["Limit"] = limit
        queries.append(q)
    queries.append(dict(TableName="numbers", KeyConditionExpression="p = :p AND seq BETWEEN :a AND :b",
                        ScanIndexForward=forward, ExpressionAttributeValues={":p": s("n"), ":a": n("0.3"), ":b": n("10")}))
# The legacy API: KeyConditions, and with a QueryFilter.
for forward in (True, False):
    queries.append(dict(TableName="records", ScanIndexForward=forward, Limit=2,
                        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [s(partitions[0])]},
                                       "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [s("sub")]}}))
    queries.append(dict(TableName="records", ScanIndexForward=forward,
                        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [s(partitions[1])]}},
                        QueryFilter={"n": {"ComparisonOperator": "GT", "AttributeValueList": [n(10)]}}))

# Exclusive start keys of the client's own, each asked of both servers as it is.
gsi_keys = lambda pk, sk, e, gsk: {"pk": s(pk), "sk": s(sk), "GSI1PK": s(e), "GSI1SK": s(gsk)}
subscribed = [item for item in items if item.get("GSI1PK") == s("order-3")]
own_start_keys = []
for item in subscribed[:3]:
    for forward in (True, False):
        own_start_keys.append((dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward, Limit=4,
                                    KeyConditionExpression="GSI1PK = :e", ExpressionAttributeValues={":e": s("order-3")}),
                               {k: item[k] for k in ("pk", "sk", "GSI1PK", "GSI1SK")}))
for forward in (True, False):
    for start in (gsi_keys("conn-5", "subscription#order-3", "order-3", "subscription#"),  # between items
                  gsi_keys("zzz", "z", "order-3", "subscription#"),                        # past the end
                  gsi_keys("conn-5", "x", "order-2", "subscription#"),                     # another partition
                  gsi_keys("conn-5", "x", "order-3", "a"),                                 # before the first
                  {"pk": s("conn-5"), "sk": s("x")},                                       # missing the index's keys
                  {"pk": n(5), "sk": s("x"), "GSI1PK": s("order-3"), "GSI1SK": s("subscription#")}):  # wrong type
        own_start_keys.append((dict(TableName="records", IndexName="GSI1", ScanIndexForward=forward, Limit=3,
                                    KeyConditionExpression="GSI1PK = :e", ExpressionAttributeValues={":e": s("order-3")}),
                               start))
    for start in ({"pk": s(partitions[0]), "sk": s("m")}, {"pk": s(partitions[1]), "sk": s("m")},
                  {"pk": s(partitions[0]), "sk": s("connection#")}, {"pk": s(partitions[0])},
                  {"pk": s(partitions[0]), "sk": n(1)}):
        own_start_keys.append((dict(TableName="records", KeyConditionExpression="pk = :p", ScanIndexForward=forward,
                                    Limit=2, ExpressionAttributeValues={":p": s(partitions[0])}), start))
    for start in ({"p": s("n"), "seq": n("2.0")}, {"p": s("n"), "seq": n("1E+2")}, {"p": s("n"), "seq": n(-100)}):
        own_start_keys.append((dict(TableName="numbers", KeyConditionExpression="p = :p", ScanIndexForward=forward,
                                    Limit=3, ExpressionAttributeValues={":p": s("n")}), start))

# Requests moto refuses or fails on; the same refusal from both.
refused = [
    dict(TableName="records", IndexName="GSI9", KeyConditionExpression="GSI1PK = :e", ExpressionAttributeValues={":e": s("order-1")}),
    dict(TableName="records", IndexName="GSI1", ConsistentRead=True, KeyConditionExpression="GSI1PK = :e",
         ExpressionAttributeValues={":e": s("order-1")}),
    dict(TableName="records", KeyConditionExpression="pk = :p", Limit=0, ExpressionAttributeValues={":p": s(partitions[0])}),
    dict(TableName="records", KeyConditionExpression="pk = :p", ProjectionExpression="",
         ExpressionAttributeValues={":p": s(partitions[0])}),
    dict(TableName="records", KeyConditionExpression="pk = :p", Select="COUNT", ProjectionExpression="pk",
         ExpressionAttributeValues={":p": s(partitions[0])}),
    dict(TableName="records", KeyConditionExpression="pk = :p", ReturnConsumedCapacity="SOME",
         ExpressionAttributeValues={":p": s(partitions[0])}),
    dict(TableName="records", IndexName="GSI3", KeyConditionExpression="GSI2PK = :u AND sk = :s",
         ExpressionAttributeValues={":u": s(users[0]), ":s": s("connection#")}),
    dict(TableName="nope", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": s("x")}),
]


def answers(db):
    bodies = []
    db.meta.events.register("before-parse.dynamodb.Query", lambda response_dict, **_: bodies.append(
        (response_dict["status_code"], response_dict["body"])))

    def ask(q):
        bodies.clear()
        try:
            page = db.query(**q)
            outcome = {k: page.get(k) for k in ("Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity")}
        except ClientError as e:
            page = None
            outcome = {"error": e.response["Error"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
            if outcome["status"] == 500 and not bodies[-1][1].startswith(b"{"):
                # moto failing (a Python exception): Werkzeug's page for a server, the exception
                # itself in this process.
                return None, {"status": 500, "body": "", "answer": "moto failed"}
        except Exception:
            return None, {"status": 500, "body": "", "answer": "moto failed"}
        status, body = bodies[-1]
        # A projected set comes back in the order of a Python set, which for strings and bytes
        # differs between processes: such an answer is compared as sets.
        if "tags" in q.get("ProjectionExpression", "") or q.get("IndexName") == "GSI3":
            body = json.dumps(sorted_sets(json.loads(body)), sort_keys=False).encode()
            outcome = json.loads(json.dumps(sorted_sets(outcome), default=str))
        return page, {"status": status, "body": body.decode(), "answer": outcome}

    for table in (TABLE, HASH_ONLY, NUMBERS):
        db.create_table(**table)
    for item in items:
        db.put_item(TableName="records", Item=item)
    for item in plain:
        db.put_item(TableName="plain", Item=item)
    for item in numbered:
        db.put_item(TableName="numbers", Item=item)
    pages = []
    for q in queries:
        start = None
        for _ in range(100):  # the longest has 31 pages: a start key that does not move on would loop
            page, outcome = ask({**q, **({"ExclusiveStartKey": start} if start else {})})
            pages.append(outcome)
            start = page.get("LastEvaluatedKey") if page else None
            if not start:
                break
        else:
            raise AssertionError(f"no end to the pages of {q}")
    for q, start in own_start_keys:
        pages.append(ask({**q, "ExclusiveStartKey": start})[1])
    for q in refused:
        pages.append(ask(q)[1])
    # A Scan still sees the whole table in moto's order (the patch applies during a Query only).
    pages.append(db.scan(TableName="records", Limit=60)["Items"])
    return pages


def sorted_sets(value):
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "BS") and isinstance(v, list) else sorted_sets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sorted_sets(v) for v in value]
    if isinstance(value, set):
        return sorted(value)
    return value


config = Config(retries={"total_max_attempts": 1}, parameter_validation=False)
key = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing", config=config)
launched = answers(boto3.client("dynamodb", endpoint_url=endpoint, **key))
with mock_aws():
    unpatched = answers(boto3.client("dynamodb", **key))
assert len(launched) == len(unpatched)
for i, (a, b) in enumerate(zip(launched, unpatched)):
    assert a == b, f"answer {i} differs:\npatched   {json.dumps(a)[:3000]}\nunpatched {json.dumps(b)[:3000]}"
# What the comparison covered: it would pass vacuously if every answer were an error.
kinds = {"pages": len(launched),
         "errors": sum(1 for a in launched if isinstance(a, dict) and a["status"] != 200),
         "cut at 1 MB": sum(1 for a in launched if isinstance(a, dict) and len(a["body"]) > 900000),
         "with LastEvaluatedKey": sum(1 for a in launched if isinstance(a, dict) and a["status"] == 200
                                     and a["answer"].get("LastEvaluatedKey"))}
assert kinds["errors"] >= len(refused) // 2 and kinds["cut at 1 MB"] >= 4 and kinds["with LastEvaluatedKey"] > 100, kinds
print(f"{len(queries) + len(own_start_keys) + len(refused)} queries, {len(launched)} pages "
      f"({kinds['errors']} errors, {kinds['cut at 1 MB']} cut at 1 MB, {kinds['with LastEvaluatedKey']} "
      f"with a LastEvaluatedKey): the same answers")
