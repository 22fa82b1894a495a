# What moto lacks of the AWS APIs wsstack calls, added before the server starts: the launcher
# puts this file, as sitecustomize.py, first on the server's PYTHONPATH, and Python imports it at
# start-up. Without moto (a wrapper's own Python, say) it adds nothing.
import json

try:
    from moto.apigatewayv2.responses import ApiGatewayV2Response
except ImportError:
    ApiGatewayV2Response = None


def get_route_responses(self):
    # GET /v2/apis/{apiId}/routes/{routeId}/routeresponses: moto stores route responses
    # (CreateRouteResponse, GetRouteResponse) but cannot list them. One page: no NextToken.
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, route_id = parts[-4], parts[-2]
    route = self.apigatewayv2_backend.get_route(api_id, route_id)
    items = [response.to_json() for response in route.route_responses.values()]
    return 200, {}, json.dumps({"items": items})


if ApiGatewayV2Response is not None:
    ApiGatewayV2Response.get_route_responses = get_route_responses


# IpAddressType of an API (ipv4, the default, or dualstack): moto neither keeps nor returns it.
# CreateApi and UpdateApi store it on the model, every answer carrying the API shows it.
try:
    from moto.apigatewayv2.models import Api as _Api
except ImportError:
    _Api = None


def _with_ip_address_type(handler):
    def wrapped(self):
        status, headers, body = handler(self)
        requested = json.loads(self.body or "{}").get("ipAddressType")
        answer = json.loads(body)
        if requested is not None and "apiId" in answer:
            api = self.apigatewayv2_backend.get_api(answer["apiId"])
            api.ip_address_type = requested
            answer["ipAddressType"] = requested
            body = json.dumps(answer)
        return status, headers, body

    return wrapped


if ApiGatewayV2Response is not None and _Api is not None:
    _api_to_json = _Api.to_json

    def _api_json(self):
        answer = _api_to_json(self)
        answer["ipAddressType"] = getattr(self, "ip_address_type", "ipv4")
        return answer

    _Api.to_json = _api_json
    ApiGatewayV2Response.create_api = _with_ip_address_type(ApiGatewayV2Response.create_api)
    ApiGatewayV2Response.update_api = _with_ip_address_type(ApiGatewayV2Response.update_api)


# Stages. moto has no UpdateStage and no DeleteRouteSettings, and enables access logging on any
# account. As API Gateway does: UpdateStage changes the fields it is given (defaultRouteSettings and
# accessLogSettings as a whole, routeSettings per route key) and keeps the others;
# DeleteRouteSettings drops one route key's settings; a stage with an access log destination needs
# the account's CloudWatch Logs role (API Gateway v1 UpdateAccount /cloudwatchRoleArn), else
# CreateStage and UpdateStage answer 400 BadRequestException with API Gateway's own message.
try:
    from moto.apigatewayv2.exceptions import BadRequestException as _BadRequest
    from moto.apigateway.models import apigateway_backends as _v1_backends
    import moto.apigatewayv2.urls as _v2_urls
    from urllib.parse import unquote as _unquote
except ImportError:
    _BadRequest = None


def _require_logging_role(self, config):
    destination = (config.get("accessLogSettings") or {}).get("destinationArn")
    if destination and not _v1_backends[self.current_account][self.region].account.cloudwatch_role_arn:
        raise _BadRequest("CloudWatch Logs role ARN must be set in account settings to enable logging")


def _create_stage_checked(handler):
    def wrapped(self):
        _require_logging_role(self, json.loads(self.body or "{}"))
        return handler(self)

    return wrapped


def update_stage(self):
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, stage_name = parts[-3], _unquote(parts[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    config = json.loads(self.body or "{}")
    _require_logging_role(self, config)
    if "defaultRouteSettings" in config:
        stage.default_route_settings = config["defaultRouteSettings"]
    if "accessLogSettings" in config:
        stage.access_log_settings = config["accessLogSettings"]
    for key, settings in (config.get("routeSettings") or {}).items():
        stage.route_settings[key] = settings
    if "autoDeploy" in config:
        stage.auto_deploy = config["autoDeploy"]
    if "description" in config:
        stage.description = config["description"]
    if "stageVariables" in config:
        stage.stage_variables = config["stageVariables"]
    return 200, {}, json.dumps(stage.to_json())


def delete_route_settings(self):
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, stage_name, route_key = parts[-5], _unquote(parts[-3]), _unquote(parts[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    stage.route_settings.pop(route_key, None)
    return 204, {}, ""


if ApiGatewayV2Response is not None and _BadRequest is not None:
    ApiGatewayV2Response.create_stage = _create_stage_checked(ApiGatewayV2Response.create_stage)
    ApiGatewayV2Response.update_stage = update_stage
    ApiGatewayV2Response.delete_route_settings = delete_route_settings
    _v2_urls.url_paths[
        "{0}/v2/apis/(?P<api_id>[^/]+)/stages/(?P<stage_name>[^/]+)/routesettings/(?P<route_key>[^/]+)$"
    ] = ApiGatewayV2Response.dispatch


def delete_access_log_settings(self):
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, stage_name = parts[-4], _unquote(parts[-2])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    stage.access_log_settings = None
    return 204, {}, ""


if ApiGatewayV2Response is not None and _BadRequest is not None:
    ApiGatewayV2Response.delete_access_log_settings = delete_access_log_settings
    _v2_urls.url_paths[
        "{0}/v2/apis/(?P<api_id>[^/]+)/stages/(?P<stage_name>[^/]+)/accesslogsettings$"
    ] = ApiGatewayV2Response.dispatch


# DynamoDB Query, fast at wsstack dev's scale. At 15,000 subscribers (30,000 items, moto/bench/query)
# moto as it ships takes 0.2-0.4 s for one connection's Query and 3-7 s for the push handler's GSI1
# Query of an entity's subscribers (2 pages of 1 MB): Table.query reads Table.all_items(), which
# sorts the whole table on every call, sorts its candidates again by comparing DynamoType objects,
# walks past the items of earlier pages one comparison at a time, counts each item's size attribute
# by attribute, deep-copies the page and projects each item through Python values and back; the
# answer then goes through dynamo_to_dict and moto's generic response serializer, attribute by
# attribute.
#
# Here Table.query takes the same steps in the same order on plain values: one partition's items (a
# table Query) or the index's matches (an index Query), sorted by the same keys (the index's keys,
# then the table's: unique) compared as moto compares them (cast_value), the earlier pages skipped
# by bisection (an exclusive start key sorts where moto's walk stops), the page cut at Limit or at
# moto's 1 MB of item sizes, then the index's projection, the filter and the ProjectionExpression.
# The answer's items are new, as moto's deep copies are: their lists, maps and sets copied, their
# strings, numbers, booleans, nulls and binary values (which moto never changes in place) shared.
# The answer is then written as JSON directly for items of strings, numbers, booleans and nulls;
# the rest of it (sets, lists, maps, binary, Count, LastEvaluatedKey, ConsumedCapacity) still goes
# through moto's serializer, and the two are put together in the serializer's order: the same
# bytes. Whatever the fast path does not cover, or fails on, is moto's own query (the legacy
# QueryFilter and KeyConditions on non-key attributes, consistent reads of an index, key attributes
# of mixed types, odd exclusive start keys, errors): the same answer and the same error.
# moto/tests/query_equivalence.py (the test a_query_answers_as_unpatched_moto_does) compares the
# launched server's answers, page by page and byte by byte, with moto's own in its process.
import bisect as _bisect
import copy as _copy
import gc as _gc
import operator as _operator
import re as _re
import threading

try:
    from boto3.dynamodb.types import DYNAMODB_CONTEXT as _DYNAMODB_CONTEXT
    from moto.core.responses import ActionResult as _ActionResult
    from moto.dynamodb.comparisons import OpDefault as _NoFilter, get_comparison_func as _comparison
    from moto.dynamodb.models.dynamo_type import (
        DynamoType as _DynamoType,
        Item as _Item,
        LimitedSizeDict as _Attributes,
        deserializer as _to_python,
        serializer as _from_python,
    )
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT as _PAGE_BYTES, Table as _Table
    from moto.dynamodb.models.utilities import bytesize as _bytesize
    import moto.dynamodb.responses as _dynamodb_responses
except ImportError:
    _Table = None

_querying = threading.local()

if _Table is not None:
    _all_items = _Table.all_items
    _table_query = _Table.query

    # moto's own query, with Table.all_items (this thread, during the Query only: moto serves
    # requests on several threads, and a Scan elsewhere still gets the sorted list) giving the items
    # unsorted, and for a table Query only its own partition's: the first sort is wasted, Query sorts
    # its candidates itself by a total order, so the answer is the same.
    def _query_items(self):
        scope = getattr(_querying, "scope", None)
        if scope is None or scope[0] is not self:
            return _all_items(self)
        _table, partition = scope
        if partition is not None:
            bucket = self.items.get(partition)
            if bucket is None:
                return []
            return list(bucket.values()) if self.range_key_attr else [bucket]
        items = []
        for bucket in self.items.values():
            if self.range_key_attr:
                items.extend(bucket.values())
            else:
                items.append(bucket)
        return items

    def _moto_query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name") if len(args) < 7 else args[6]
        # A table Query keeps the items whose hash key equals the one asked for: its partition.
        partition = None if index_name else hash_key
        previous = getattr(_querying, "scope", None)
        _querying.scope = (self, partition)
        try:
            return _table_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.scope = previous

    _Table.all_items = _query_items

    class _MotosOwn(Exception):
        """A Query the fast path leaves to moto."""

    # moto's find_nested_key reads "name[2]" as an element of a list.
    _LIST_ELEMENT = _re.compile(r"(.+)\[(\d+)\]$")
    # What moto's Item checks an item against (LimitedSizeDict).
    _ITEM_BYTES = 405000

    def _cast(value):
        # DynamoType.cast_value, which for a string is its value.
        return value.value if value.type == "S" else value.cast_value

    _ATTRS = _operator.attrgetter("attrs")
    _TYPE = _operator.attrgetter("type")
    _VALUE = _operator.attrgetter("value")
    _SCALARS = frozenset(("S", "N", "BOOL", "NULL", "B"))

    def _copy_value(value):
        # What the answer may share with the table: moto changes lists, maps and sets in place
        # (DynamoType.__setitem__, ADD to a set), never a string, number, boolean, null or binary
        # value (an update puts a new DynamoType in its place), so only the former are copied.
        if value is None or value.type in _SCALARS:
            return value
        return _copy.deepcopy(value)

    def _new_item(hash_key, range_key, attrs):
        """An Item holding attrs as they are (no size check: the caller has made sure it would pass).
        Made with object.__new__, not Item(): BaseModel.__new__ keeps every Item moto ever makes in
        Item.instances_tracked, so each Query's copies of its answer stayed in memory for the
        server's lifetime (15,000 items a push at 15,000 subscribers)."""
        item = object.__new__(_Item)
        item.hash_key = hash_key
        item.range_key = range_key
        item.attrs = _Attributes.__new__(_Attributes)
        dict.update(item.attrs, attrs)
        return item

    def _copy_item(item):
        # A copy as copy.deepcopy(item) makes it (Item.__deepcopy__ skips the size checks too).
        return _new_item(_copy_value(item.hash_key), _copy_value(item.range_key),
                         {key: _copy_value(value) for key, value in item.attrs.items()})

    def _item_size(item):
        # Item.size(): each attribute's name and value in bytes (a number: its characters, a set:
        # its members'). Values that are all ASCII strings are counted at once.
        attrs = item.attrs
        try:
            values = "".join(map(_VALUE, attrs.values()))
        except TypeError:
            values = None
        if values is not None and values.isascii():
            return len("".join(attrs).encode("utf-8")) + len(values)
        total = 0
        for key, value in attrs.items():
            kind = value.type
            if kind == "S":
                v = value.value
                if type(v) is str:
                    total += len(key.encode("utf-8")) + len(v.encode("utf-8"))
                    continue
            elif kind == "N":
                total += len(key.encode("utf-8")) + len(str(value.value))
                continue
            total += _bytesize(key) + value.size()
        return total

    def _project(item, names, wanted):
        """Item.project([[name] for name in names]) for top-level names (wanted: the same as a set).
        moto turns every attribute into a Python value (boto3's TypeDeserializer, which may fail),
        keeps the named ones and turns them back (TypeSerializer) into a new Item. A string comes
        back as it was, and an integer that is not kept cannot fail; only the others make the round
        trip here."""
        attrs = item.attrs
        python = {}
        for key, value in attrs.items():
            kind, v = value.type, value.value
            if kind == "S" and type(v) is str:
                continue
            if kind == "N" and type(v) is str:
                if key not in wanted and len(v) <= 38 and v.isascii() and v.isdigit():
                    continue  # at most 38 digits: boto3's TypeDeserializer makes it a Decimal without fail
                python[key] = _DYNAMODB_CONTEXT.create_decimal(v)
            else:
                python[key] = _to_python.deserialize(value.to_regular_json())
        kept = {}
        size = 0
        for name in names:
            if name in python:
                kept[name] = _from_python.serialize(python[name])
            elif name in attrs and name not in kept:
                value = kept[name] = attrs[name]
                size += len(name.encode("utf-8")) + len(value.value.encode("utf-8"))
        hash_key, range_key = item.hash_key, item.range_key
        if hash_key is not None and hash_key.type not in _SCALARS:
            hash_key = _copy.deepcopy(hash_key)
        if range_key is not None and range_key.type not in _SCALARS:
            range_key = _copy.deepcopy(range_key)
        if size <= _ITEM_BYTES and (not python or python.keys().isdisjoint(wanted)):
            return _new_item(hash_key, range_key, kept)
        # Item.__init__ makes the values and checks the size as it adds each attribute, as in moto.
        projected = object.__new__(_Item)
        wire = {name: value if name in python else {"S": value.value} for name, value in kept.items()}
        _Item.__init__(projected, hash_key=hash_key, range_key=range_key, attrs=wire)
        return projected

    def _candidates(self, hash_key, index_name, hash_key_conditions, range_key_conditions):
        """What moto's Table.query keeps before sorting, and the names it sorts by."""
        if not index_name:
            if hash_key is None:
                raise _MotosOwn
            bucket = self.items.get(hash_key)
            if bucket is None:
                found = []
            else:
                found = [item for item in (bucket.values() if self.range_key_attr else [bucket])
                         if isinstance(item, _Item) and item.hash_key == hash_key]
            names = self._generate_attr_to_sort_by([self.hash_key_attr], [self.range_key_attr])
            return found, names, None
        index = {i.name: i for i in self.all_indexes()}.get(index_name)
        if index is None:
            raise _MotosOwn  # moto's error
        hash_keys = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
        range_keys = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
        if not hash_keys:
            raise _MotosOwn  # moto's error
        if range_keys:
            index_range_key = range_keys[0]
            range_attrs = range_keys + [self.range_key_attr]
        else:
            from moto.dynamodb.models.table import GlobalSecondaryIndex
            if isinstance(index, GlobalSecondaryIndex) and self.range_key_attr:
                index_range_key = self.range_key_attr
            else:
                index_range_key = self.hash_key_attr
            range_attrs = [index_range_key, self.range_key_attr]
        names = self._generate_attr_to_sort_by(hash_keys + [self.hash_key_attr], range_attrs)
        conditions = dict(hash_key_conditions or [])
        equalities = {}
        if range_key_conditions and len(range_key_conditions) > 1:
            for name, _comparison_, values in range_key_conditions[:-1]:
                equalities[name] = values[0]
        found = []
        for bucket in self.items.values():
            if self.range_key_attr:
                found.extend(bucket.values())
            else:
                found.append(bucket)
        found = [item for item in found if isinstance(item, _Item)]
        # The hash conditions first, then the range equalities, as moto tries them on each item.
        for name, expected in list(conditions.items()) + list(equalities.items()):
            if expected.type == "S":
                value = expected.value
                found = [item for item in found
                         if (v := item.attrs.get(name)) is not None and v.type == "S" and v.value == value]
            else:
                found = [item for item in found if (v := item.attrs.get(name)) is not None and v == expected]
        for name in range_keys:
            found = [item for item in found if item.attrs.get(name) is not None]
        return found, names, index_range_key

    def _fast_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                    scan_index_forward, projection_expressions, index_name=None, consistent_read=False,
                    filter_expression=None, hash_key_conditions=None, range_key_conditions=None,
                    **filter_kwargs):
        args = (self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
                projection_expressions, index_name, consistent_read, filter_expression)
        more = dict(hash_key_conditions=hash_key_conditions, range_key_conditions=range_key_conditions,
                    **filter_kwargs)
        if filter_kwargs or type(scan_index_forward) is not bool:
            return _moto_query(*args, **more)
        if index_name and consistent_read:
            return _moto_query(*args, **more)  # moto's error for a global index, or its answer
        try:
            return _page(*args, hash_key_conditions, range_key_conditions)
        except Exception:
            # The fast path changes nothing: moto's own query gives its answer or its error.
            return _moto_query(*args, **more)

    def _page(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, forward,
              projection_expressions, index_name, consistent_read, filter_expression, hash_key_conditions,
              range_key_conditions):
        found, names, index_range_key = _candidates(self, hash_key, index_name, hash_key_conditions,
                                                    range_key_conditions)
        if index_name:
            index = self.get_index(index_name)
            if range_comparison and not [k for k in index.schema if k["KeyType"] == "RANGE"]:
                raise _MotosOwn  # moto's ValueError
        # SORT, by plain values: moto compares the DynamoTypes' cast values, which is the same
        # order as long as each key attribute has one type throughout.
        attributes = list(map(_ATTRS, found))
        columns = []
        types = []
        for name in names:
            column = list(map(_operator.itemgetter(name), attributes))
            kinds = set(map(_TYPE, column))
            if len(kinds) > 1:
                raise _MotosOwn
            kind = kinds.pop() if kinds else None
            types.append(kind)
            columns.append(list(map(_VALUE, column)) if kind == "S" else [value.cast_value for value in column])
        keys = list(zip(*columns))
        order = sorted(range(len(found)), key=keys.__getitem__)
        ascending = [keys[i] for i in order]
        ordered = [found[i] for i in order]
        if forward is False:
            ordered.reverse()
        # Where moto's walk past the previous pages stops: at the first item that does not come
        # before or at the start key in the answer's order.
        start = 0
        if exclusive_start_key is not None and ordered:
            bound = []
            for name, type_ in zip(names, types):
                if name not in exclusive_start_key:
                    raise _MotosOwn
                value = _DynamoType(exclusive_start_key[name])
                if value.type != type_:
                    raise _MotosOwn
                bound.append(_cast(value))
            bound = tuple(bound)
            if forward:
                start = _bisect.bisect_right(ascending, bound)
            else:
                start = len(ascending) - _bisect.bisect_left(ascending, bound)
        # FILTER on the range condition and cut the page, as moto does: at Limit items, or before the
        # item that would take the page's item sizes past 1 MB, the last item kept giving the
        # LastEvaluatedKey; ScannedCount counts what the range condition kept.
        if range_comparison:
            test = _comparison(range_comparison)
            bounds = [_cast(v) for v in range_objs]
            last_range_key_name = range_key_conditions[-1][0] if range_key_conditions else None
            if last_range_key_name:
                attribute = last_range_key_name
            elif index_name and index_range_key:
                attribute = index_range_key
            else:
                attribute = None
        results = []
        result_size = 0
        scanned_count = 0
        last_evaluated_key = None
        for position in range(start, len(ordered)):
            result = ordered[position]
            size = _item_size(result)
            if len(results) == limit or result_size + size > _PAGE_BYTES:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
                break
            if not range_comparison:
                results.append(result)
                result_size += size
                scanned_count += 1
                continue
            if attribute and result.attrs.get(attribute):
                kept = test(_cast(result.attrs.get(attribute)), *bounds)
            elif not index_name:
                kept = test(_cast(result.range_key), *bounds)
            else:
                kept = False
            if kept:
                results.append(result)
                result_size += size
                scanned_count += 1
        # The index's projection, the filter, the ProjectionExpression: on new items, never on the
        # table's own (moto deep-copies the page first).
        index_names = None
        if index_name:
            index = self.get_index(index_name)
            if index.projection:
                kind = index.projection.get("ProjectionType", None)
                if kind in ("KEYS_ONLY", "INCLUDE"):
                    index_names = index.table_key_attrs + [k["AttributeName"] for k in index.schema]
                    if kind == "INCLUDE":
                        index_names.extend(index.projection.get("NonKeyAttributes", []))
                    if any(_LIST_ELEMENT.match(name) for name in index_names):
                        raise _MotosOwn
                    index_wanted = set(index_names)
        filtering = filter_expression is not None and type(filter_expression) is not _NoFilter
        top_level = None
        if projection_expressions:
            if all(len(path) == 1 and not _LIST_ELEMENT.match(path[0]) for path in projection_expressions):
                top_level = [path[0] for path in projection_expressions]
                top_level_wanted = set(top_level)
        answer = []
        for result in results:
            if index_names is not None:
                item = _project(result, index_names, index_wanted)
            elif filtering or top_level is None:
                item = _copy_item(result)
            else:
                item = result  # projected below, into a new item
            if filtering and not filter_expression.expr(item):
                continue
            if projection_expressions:
                if top_level is not None:
                    item = _project(item, top_level, top_level_wanted)
                else:
                    item = item.project(projection_expressions)
            answer.append(item)
        return answer, scanned_count, last_evaluated_key

    _Table.query = _fast_query

    # The answer, written directly. DynamoHandler.query builds its answer as
    # DynamoResult({"Items": [item.attrs, ...], "Count", "ScannedCount", "LastEvaluatedKey"}), whose
    # constructor converts it whole (dynamo_to_dict), and ConsumedCapacity is added to it after.
    # During a Query (this thread) that DynamoResult keeps the answer as it is; when serialized,
    # the items whose attributes are all strings, numbers, booleans or nulls are written as the
    # serializer writes them ({"S": value} and so on), the rest of the answer (other items
    # included) goes through moto's serializer, and the items are put back in their order.
    _DynamoResult = _dynamodb_responses.DynamoResult
    _PLAIN = {"S": str, "N": str, "BOOL": bool, "NULL": bool}

    def _wire(attrs):
        written = {}
        for key, value in attrs.items():
            if _PLAIN.get(value.type) is not type(value.value):
                return None
            written[key] = {value.type: value.value}
        return written

    class _QueryResult(_DynamoResult):
        def __init__(self, result):
            if getattr(_querying, "answering", False) and isinstance(result, dict):
                _querying.answering = False  # this answer only
                _ActionResult.__init__(self, result)
                self._as_built = True
            else:
                _DynamoResult.__init__(self, result)
                self._as_built = False

        def execute_result(self, context):
            if not self._as_built:
                return _DynamoResult.execute_result(self, context)
            answer = self.result
            items = answer.get("Items")
            if not isinstance(items, list):
                return _DynamoResult(answer).execute_result(context)
            written = [_wire(attrs) for attrs in items]
            rest = dict(answer)
            rest["Items"] = [attrs for attrs, w in zip(items, written) if w is None]
            status, headers, body = _DynamoResult(rest).execute_result(context)
            serialized = json.loads(body)
            others = iter(serialized["Items"])
            serialized["Items"] = [w if w is not None else next(others) for w in written]
            from moto import settings
            return status, headers, json.dumps(serialized, indent=4 if settings.PRETTIFY_RESPONSES else None)

    _handler_query = _dynamodb_responses.DynamoHandler.query

    def _answer_query(self):
        _querying.answering = True
        try:
            return _handler_query(self)
        finally:
            _querying.answering = False

    _dynamodb_responses.DynamoResult = _QueryResult
    _dynamodb_responses.DynamoHandler.query = _answer_query

    # No cyclic garbage collection (in the whole process) while moto answers a Query
    # (DynamoHandler.call_action: the Query, then its answer serialized). Otherwise the collections
    # that a page's new items set off (a page of 1 MB: some 12,000 items at 15,000 subscribers) move
    # them to the oldest generation, and every two or three pushes, that generation grown by a
    # quarter, a full collection walks every object in the server, the tables' items with them
    # (about 0.2 s at 15,000 subscribers). With none during the Query, the items are freed as soon
    # as the answer is serialized and never get there. Two Queries at once: the one that turned
    # collection off turns it on again when it ends, maybe before the other does. That changes how
    # long they take, never what they answer.
    _handler_call_action = _dynamodb_responses.DynamoHandler.call_action

    def _call_action(self):
        if self._get_action() != "Query" or not _gc.isenabled():
            return _handler_call_action(self)
        _gc.disable()
        try:
            return _handler_call_action(self)
        finally:
            _gc.enable()

    _dynamodb_responses.DynamoHandler.call_action = _call_action


# EventBridge's targets: for every event a rule matches, moto parses each JSONPath of the target's
# InputPathsMap (or of its default template, eight of them) again with jsonpath_ng's PLY parser,
# some 6-20 ms of each PutEvents (moto/events/utils.py, EventTemplateParser.parse). A parsed path
# is only read (`find`), never changed: parsed once per text here, for every caller.
try:
    import jsonpath_ng.ext as _jsonpath_ext
except ImportError:
    _jsonpath_ext = None

if _jsonpath_ext is not None:
    import functools as _functools

    _jsonpath_ext.parse = _functools.lru_cache(maxsize=1024)(_jsonpath_ext.parse)


# The server answers each connection on a thread of its own, all of them under one interpreter lock.
# A thread that reads, writes or waits gives the lock up, and gets it back from a busy thread only
# when that one is made to yield: by default every 5 ms. A request beside a long Query (a page of
# 5,000 items is 0.2 s of Python) may wait up to 5 ms again every time it gives up the lock. The
# push's SendMessageBatch of the first five chunks of a 15,000-subscriber event, beside the Query of
# the next page, took 296 ms instead of 20-45 alone, and so the first receipt came 0.74-0.88 s after
# PutEvents; at 0.5 ms it took 45 ms, the first receipt 0.50 s (examples/fanout 15000, with each
# request's time logged; BENCHMARKS.md "The emulator's interpreter lock"). A busy thread alone is
# never made to yield, whatever the interval.
import sys as _sys

_sys.setswitchinterval(0.0005)


# Kept connections. Werkzeug's development server, which moto_server runs, ends every answer with
# "Connection: close" (Python's http.server would not skip a body the application left unread), so
# every SDK call to the emulator was a TCP connection and a server thread of its own, where AWS's
# endpoints keep a connection for the SDK's pool. In the first 240 s of a 15,000-subscriber fan-out
# through `wsstack dev` the handlers made 58,000 connect()s (451 in the whole run now), each a search
# for a free ephemeral port among the 15,000 the clients hold: a quarter of the handlers' CPU
# (BENCHMARKS.md "Kept connections to the emulator"). Here a request that says how long its body
# is (or has none) keeps its connection: its body is read to the end after the answer, whatever
# the application read, and werkzeug's drain after each answer (which reads whatever the socket
# holds in the next 10 ms, the next request included) is skipped for it. Chunked request bodies,
# HTTP/1.0 and requests that ask for "Connection: close" still close, as before.
import selectors as _selectors

try:
    from werkzeug import serving as _serving
    from werkzeug.exceptions import ClientDisconnected as _ClientDisconnected
    from werkzeug.wsgi import LimitedStream as _LimitedStream
except ImportError:
    _serving = None

_connection = threading.local()


class _NothingToDrain:
    def register(self, *args, **kwargs):
        pass

    def select(self, timeout=None):
        return []

    def close(self):
        pass


class _DrainOnlyClosing:
    """werkzeug.serving's `selectors`: its drain sees nothing to read on a kept connection."""

    EVENT_READ = _selectors.EVENT_READ

    @staticmethod
    def DefaultSelector():
        if getattr(_connection, "kept", False):
            return _NothingToDrain()
        return _selectors.DefaultSelector()


def _body_length(handler):
    """The request body's length when the connection can be kept, else None."""
    if handler.close_connection or handler.headers.get("Transfer-Encoding"):
        return None
    length = handler.headers.get("Content-Length", "0").strip()
    return int(length) if length.isdigit() else None


if _serving is not None and all(
    hasattr(_serving.WSGIRequestHandler, name) for name in ("run_wsgi", "make_environ", "send_header")
) and getattr(_serving, "selectors", None) is _selectors:
    _werkzeug_handler = _serving.WSGIRequestHandler
    _run_wsgi = _werkzeug_handler.run_wsgi
    _make_environ = _werkzeug_handler.make_environ
    _send_header = _werkzeug_handler.send_header

    def _kept_make_environ(self):
        environ = _make_environ(self)
        length = getattr(_connection, "length", None)
        if getattr(_connection, "kept", False):
            environ["wsgi.input"] = _LimitedStream(self.rfile, length)
        return environ

    def _kept_send_header(self, keyword, value):
        if getattr(_connection, "kept", False) and keyword.lower() == "connection" and value.lower() == "close":
            return
        _send_header(self, keyword, value)

    def _kept_run_wsgi(self):
        length = _body_length(self)
        _connection.kept = length is not None
        _connection.length = length
        try:
            _run_wsgi(self)
            if _connection.kept and not self.close_connection:
                try:
                    self.environ["wsgi.input"].exhaust()
                except (_ClientDisconnected, ConnectionError, OSError):
                    self.close_connection = True
        finally:
            _connection.kept = False

    _serving.selectors = _DrainOnlyClosing
    # werkzeug writes an answer's headers and its body in two writes; on a kept connection the body
    # would wait for the client's delayed acknowledgement of the headers (Nagle's algorithm): 44 ms
    # a request. A closing connection pushed it out as it closed.
    _werkzeug_handler.disable_nagle_algorithm = True
    _werkzeug_handler.make_environ = _kept_make_environ
    _werkzeug_handler.send_header = _kept_send_header
    _werkzeug_handler.run_wsgi = _kept_run_wsgi


# AWS managed policies: moto loads its copy of all of them only with MOTO_IAM_LOAD_MANAGED_POLICIES
# (about a thousand, for every account); the one `up --set-account-logging-role` attaches,
# AmazonAPIGatewayPushToCloudWatchLogs, exists in every account, as on AWS.
try:
    from moto.iam import models as _iam_models
except ImportError:
    _iam_models = None

_MANAGED = ("AmazonAPIGatewayPushToCloudWatchLogs",)

if _iam_models is not None:
    _init_aws_policies = _iam_models.IAMBackend._init_aws_policies

    def _with_managed_policies(self):
        policies = _init_aws_policies(self)
        known = {p.name for p in policies}
        data = json.loads(_iam_models.aws_managed_policies_data)
        for name in _MANAGED:
            if name not in known and name in data:
                policies.append(
                    _iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data[name])
                )
        return policies

    _iam_models.IAMBackend._init_aws_policies = _with_managed_policies


# DynamoDB writes one at a time, as DynamoDB applies them: moto serves requests on several threads
# and checks a condition, then writes, with nothing in between held, so two conditional writes at
# once could both pass (two events of one stream numbered alike in history.rs's transaction, two
# subscriptions over a connection's maximum), and a read could see half a transaction. One lock
# over every item operation of the backend: moto's Python runs one thread at a time anyway.
try:
    from moto.dynamodb.models import DynamoDBBackend as _DynamoDBBackend
except ImportError:
    _DynamoDBBackend = None

if _DynamoDBBackend is not None:
    _items_lock = threading.RLock()

    def _one_at_a_time(operation):
        def locked(self, *args, **kwargs):
            with _items_lock:
                return operation(self, *args, **kwargs)

        return locked

    for _name in ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items",
                  "transact_get_items", "batch_write_item", "batch_get_item"):
        if hasattr(_DynamoDBBackend, _name):
            setattr(_DynamoDBBackend, _name, _one_at_a_time(getattr(_DynamoDBBackend, _name)))


# TransactWriteItems without copying tables: moto deep-copies every table a transaction names
# before it starts (to roll back by putting the copies in place), so each transaction costs the
# whole table: history.rs numbers every event in one, and 1,000 events on a table of a few thousand
# items grew moto past 12 GB. Here the conditions are all checked first (under the lock above,
# nothing changes in between), a failed one cancels the transaction before anything is written, as
# DynamoDB does; then the writes run, and only the items they touch are kept to be put back should
# one of them fail. The answers (TransactionCanceledException with a reason per item, in order) are
# moto's own.
try:
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed as _ConditionalCheckFailed,
        MultipleTransactionsException as _MultipleTransactions,
        TooManyTransactionsException as _TooManyTransactions,
        TransactionCanceledException as _TransactionCanceled,
        TransactWriteSingleOpException as _SingleOp,
    )
    from moto.dynamodb.comparisons import get_filter_expression as _filter_expression
except ImportError:
    _TransactionCanceled = None

if _DynamoDBBackend is not None and _TransactionCanceled is not None:
    import copy as _copy

    def _key_of(self, op_type, op):
        if op_type == "Put":
            attrs = op["Item"]
            table = self.get_table(op["TableName"])
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
            return key
        return op["Key"]

    def _restore(self, table_name, key, old):
        table = self.get_table(table_name)
        if old is None:
            try:
                self.delete_item(table_name, key)
            except Exception:
                pass
        elif table.range_key_attr is not None:
            table.items[old.hash_key][old.range_key] = old
        else:
            table.items[old.hash_key] = old

    def _transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise _TooManyTransactions()
        targets = set()
        errors = []
        planned = []
        for item in transact_items:
            if len(list(item.keys())) > 1:
                raise _SingleOp
            op_type, op = next(iter(item.items()))
            original_item = None
            try:
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                key = _key_of(self, op_type, op)
                target = (str(table_name), str(dict(sorted(key.items()))))
                if target in targets:
                    raise _MultipleTransactions()
                targets.add(target)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = _filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    )
                    if not check.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise _ConditionalCheckFailed(item=original_item)
                planned.append((op_type, op, table_name, key, _copy.deepcopy(current)))
                errors.append((None, None, None))
            except _MultipleTransactions:
                raise
            except _ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:
                if type(e).__name__ == "MockValidationException":
                    raise
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            raise _TransactionCanceled(errors)
        done = []
        try:
            for op_type, op, table_name, key, old in planned:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(table_name, op["Item"], expression_attribute_names=names,
                                  expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(table_name, key, expression_attribute_names=names,
                                     expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                     expression_attribute_names=names, expression_attribute_values=values)
                done.append((table_name, key, old))
        except Exception:
            for table_name, key, old in reversed(done):
                _restore(self, table_name, key, old)
            raise

    _DynamoDBBackend.transact_write_items = _one_at_a_time(_transact_write_items)
