-- TEST DOUBLE of pg_net 0.20.4 (supabase/pg_net; bubble-sync devstack).
--
-- Why one file: PostgreSQL installs an extension's version from one script, `pg_net--0.20.4.sql`, which this
-- double stands in for.
--
-- Mirrors what callers of the real extension can observe:
--   * schema `net`, the domain net.http_method, the types net.request_status, net.http_response and
--     net.http_response_result, and the UNLOGGED tables net.http_request_queue and net._http_response
--     with the real columns and index;
--   * net.http_get / net.http_post / net.http_delete with the 0.20 signatures and defaults
--     (timeout_milliseconds 5000); http_post adds `Content-Type: application/json` when it is missing
--     and rejects any other Content-Type with pg_net's error; params are URL-encoded like
--     curl_easy_escape and appended like curl's CURLU_APPENDQUERY; a URL curl's URL API rejects raises
--     `invalid URL "<url>": <curl_url_strerror text>`; a NULL url fails the queue's NOT NULL;
--   * the wake happens at commit and never on rollback: net.wake() sends a NOTIFY, which PostgreSQL
--     delivers only when the transaction commits (pg_net registers a commit callback that sets the
--     worker's latch);
--   * net._http_collect_response, net.http_collect_response (which fails in 0.20.4, see below),
--     net.worker_restart, net.wait_until_running, net.check_worker_is_up;
--   * the grants: pg_net gives PUBLIC usage on `net`, all privileges on its tables and sequences, and
--     EXECUTE on every function (SECURITY INVOKER since 0.12.0); Supabase's event trigger
--     extensions.grant_pg_net_access() adds USAGE on `net` for postgres, anon, authenticated and
--     service_role. So anon can call net.http_post and read queued headers, as on Supabase.
-- Differs from the real one:
--   * nothing is sent unless devstack/pgnet_worker/ runs against this database (the real worker is a
--     background process that serves one database per cluster, `pg_net.database_name`);
--   * the worker is found by its application_name (starting with 'pg_net') in pg_stat_activity of the
--     current database, not by backend_type;
--   * the URL check is a hand-written subset of libcurl 7.88's URL parser: no IDN or IPv4 number
--     normalisation, no percent-decoding of host names (a '%' in a host name is rejected), and non-HTTP
--     schemes are parsed like http (the worker refuses them anyway, as pg_net does);
--   * PREPARE TRANSACTION after a request fails (NOTIFY cannot be prepared); in pg_net it just does not
--     wake the worker.

\echo Use "CREATE EXTENSION pg_net" to load this file. \quit

-- ---------------------------------------------------------------------------------------------------
-- Schema and types
-- ---------------------------------------------------------------------------------------------------

create schema if not exists net;

create domain net.http_method as text
  check (value ilike 'get' or value ilike 'post' or value ilike 'delete');

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');

create type net.http_response as (
  status_code integer,
  headers     jsonb,
  body        text
);

create type net.http_response_result as (
  status   net.request_status,
  message  text,
  response net.http_response
);

-- ---------------------------------------------------------------------------------------------------
-- Tables (UNLOGGED as in pg_net: lost after a crash, kept across a clean restart)
-- ---------------------------------------------------------------------------------------------------

-- Requests waiting for the worker, which deletes them when it takes them.
create unlogged table net.http_request_queue (
  id                   bigserial,
  method               net.http_method not null,
  url                  text not null,
  headers              jsonb,
  body                 bytea,
  timeout_milliseconds int not null
);

-- One row per finished request, same id as the request; the worker deletes rows older than pg_net.ttl.
create unlogged table net._http_response (
  id           bigint,
  status_code  integer,
  content_type text,
  headers      jsonb,
  content      text,
  timed_out    bool,
  error_msg    text,
  created      timestamptz not null default now()
);

create index on net._http_response (created);

-- ---------------------------------------------------------------------------------------------------
-- URL helpers (pg_net implements these in C with libcurl)
-- ---------------------------------------------------------------------------------------------------

-- Percent-encodes every byte outside RFC 3986's unreserved set, as curl_easy_escape does.
create function net._urlencode_string(string varchar)
returns text
language sql
immutable
strict
set search_path = ''
as $$
  select coalesce(
    string_agg(
      case
        when b between 48 and 57 or b between 65 and 90 or b between 97 and 122 or b in (45, 46, 95, 126)
          then pg_catalog.chr(b)
        else '%' || pg_catalog.upper(pg_catalog.lpad(pg_catalog.to_hex(b), 2, '0'))
      end,
      '' order by i
    ),
    ''
  )
  from (select pg_catalog.convert_to(string, 'UTF8') as bytes) as s,
       pg_catalog.generate_series(0, pg_catalog.length(s.bytes) - 1) as i,
       pg_catalog.get_byte(s.bytes, i) as b
$$;

-- Validates and normalises `url` the way curl's URL API does for http(s) (lower-case scheme, "/" for an
-- empty path, dot segments removed, port without leading zeros), then appends each non-NULL element of
-- `params_array` to the query like CURLU_APPENDQUERY. NULL in, NULL out (so a NULL url later fails the
-- queue's NOT NULL constraint, as in pg_net).
create function net._encode_url_with_params_array(url text, params_array text[])
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  m         text[];
  scheme    text;
  rest      text;
  slashes   int;
  authority text;
  userinfo  text;
  hostport  text;
  host      text;
  port      text;
  path      text;
  query     text;
  fragment  text;
  input     text;
  segment   text;
  param     text;
  problem   text;
begin
  if url is null or params_array is null then
    return null;
  end if;

  <<parse>>
  begin
    m := pg_catalog.regexp_match(url, '^([A-Za-z][A-Za-z0-9+.-]*):(.*)$');
    if m is null then
      problem := 'Bad scheme';
      exit parse;
    end if;
    scheme := pg_catalog.lower(m[1]);
    -- the schemes libcurl 7.88 knows; anything else is rejected before the worker sees it
    if scheme <> all (array[
      'dict', 'file', 'ftp', 'ftps', 'gopher', 'gophers', 'http', 'https', 'imap', 'imaps', 'ldap',
      'ldaps', 'mqtt', 'pop3', 'pop3s', 'rtmp', 'rtmpe', 'rtmps', 'rtmpt', 'rtmpte', 'rtmpts', 'rtsp',
      'scp', 'sftp', 'smb', 'smbs', 'smtp', 'smtps', 'telnet', 'tftp'
    ]) then
      problem := 'Unsupported URL scheme';
      exit parse;
    end if;

    rest := m[2];
    slashes := pg_catalog.length(pg_catalog.substring(rest, '^/*'));
    if slashes not between 1 and 3 then
      problem := 'Unsupported number of slashes following scheme';
      exit parse;
    end if;
    rest := pg_catalog.substr(rest, slashes + 1);

    authority := pg_catalog.substring(rest, '^[^/?#]*');
    rest := pg_catalog.substr(rest, pg_catalog.length(authority) + 1);

    if pg_catalog.strpos(authority, '@') > 0 then
      userinfo := pg_catalog.split_part(authority, '@', 1);
      hostport := pg_catalog.substr(authority, pg_catalog.length(userinfo) + 2);
      if userinfo ~ '[[:cntrl:] ]' then
        problem := 'Bad user';
        exit parse;
      end if;
    else
      hostport := authority;
    end if;

    if hostport like '[%' then
      m := pg_catalog.regexp_match(hostport, '^(\[[^]]*\])(.*)$');
      if m is null or m[1] !~ '^\[[0-9A-Fa-f:.]+(%25[A-Za-z0-9._~-]+)?\]$' then
        problem := 'Bad IPv6 address';
        exit parse;
      end if;
      host := m[1];
      if m[2] <> '' and m[2] not like ':%' then
        problem := 'Port number was not a decimal number between 0 and 65535';
        exit parse;
      end if;
      port := pg_catalog.substr(m[2], 2);
    else
      host := pg_catalog.split_part(hostport, ':', 1);
      if pg_catalog.strpos(hostport, ':') > 0 then
        port := pg_catalog.substr(hostport, pg_catalog.length(host) + 2);
      end if;
    end if;

    if port <> '' then
      -- separate steps: SQL does not promise to short-circuit OR, and 'abc'::int would raise
      if port ~ '^[0-9]+$' then
        port := (port::numeric)::text;  -- drops leading zeros
      end if;
      if port !~ '^[0-9]{1,5}$' then
        problem := 'Port number was not a decimal number between 0 and 65535';
        exit parse;
      end if;
      if port::int > 65535 then
        problem := 'Port number was not a decimal number between 0 and 65535';
        exit parse;
      end if;
    else
      port := null;
    end if;

    if host = '' then
      problem := 'No host part in the URL';
      exit parse;
    end if;
    if host !~ '^\[' and host ~ '[][[:cntrl:][:space:]/:#?!@{}\\$''"^`*<>=;,+&()%]' then
      problem := 'Bad hostname';
      exit parse;
    end if;

    if pg_catalog.strpos(rest, '#') > 0 then
      fragment := pg_catalog.substr(rest, pg_catalog.strpos(rest, '#') + 1);
      rest := pg_catalog.substr(rest, 1, pg_catalog.strpos(rest, '#') - 1);
    end if;
    if pg_catalog.strpos(rest, '?') > 0 then
      query := pg_catalog.substr(rest, pg_catalog.strpos(rest, '?') + 1);
      rest := pg_catalog.substr(rest, 1, pg_catalog.strpos(rest, '?') - 1);
    end if;
    path := rest;

    if path ~ '[[:cntrl:] ]' then
      problem := 'Bad path';
      exit parse;
    end if;
    if query ~ '[[:cntrl:] ]' then
      problem := 'Bad query';
      exit parse;
    end if;
    if fragment ~ '[[:cntrl:] ]' then
      problem := 'Bad fragment';
      exit parse;
    end if;
  end parse;

  if problem is not null then
    -- pg_net raises this with ereport(ERROR) and no errcode, hence XX000
    raise exception 'invalid URL "%": %', url, problem using errcode = 'XX000';
  end if;

  -- RFC 3986 remove_dot_segments, which curl applies to every path it parses
  input := path;
  path := '';
  while input <> '' loop
    if pg_catalog.starts_with(input, '../') then
      input := pg_catalog.substr(input, 4);
    elsif pg_catalog.starts_with(input, './') or pg_catalog.starts_with(input, '/./') then
      input := pg_catalog.substr(input, 3);
    elsif input = '/.' then
      input := '/';
    elsif pg_catalog.starts_with(input, '/../') or input = '/..' then
      input := '/' || pg_catalog.substr(input, 5);
      path := pg_catalog.regexp_replace(path, '/?[^/]*$', '');
    elsif input in ('.', '..') then
      input := '';
    else
      segment := pg_catalog.substring(input, '^/?[^/]*');
      path := path || segment;
      input := pg_catalog.substr(input, pg_catalog.length(segment) + 1);
    end if;
  end loop;
  if path = '' then
    path := '/';
  end if;

  -- an empty query or fragment ("?", "#") is dropped, as curl does
  query := nullif(query, '');
  fragment := nullif(fragment, '');
  foreach param in array params_array loop
    if param is not null then
      query := case when query is null then param else query || '&' || param end;
    end if;
  end loop;

  return scheme || '://'
      || coalesce(userinfo || '@', '')
      || host
      || coalesce(':' || port, '')
      || path
      || coalesce('?' || query, '')
      || coalesce('#' || fragment, '');
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Waking and watching the worker
-- ---------------------------------------------------------------------------------------------------

-- Asks the worker to process the queue once this transaction commits. NOTIFY is queued until commit,
-- dropped on rollback, and sent once per transaction however often it is called: the same guarantees
-- as pg_net's commit callback. The channel name is WAKE_CHANNEL in devstack/pgnet_worker/worker.py.
create function net.wake()
returns void
language sql
set search_path = ''
as $$
  select pg_catalog.pg_notify('pg_net_double_wake', '')
$$;

-- Reloads the configuration and makes the worker reconnect (it then re-reads pg_net.ttl and
-- pg_net.batch_size and processes any backlog), returning pg_reload_conf()'s result as pg_net does.
-- SECURITY DEFINER because any role may call it in pg_net, where the C code bypasses the ACL of
-- pg_reload_conf(). Unlike pg_net, the restart is sent at commit (it is a NOTIFY).
create function net.worker_restart()
returns bool
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_catalog.pg_notify('pg_net_double_wake', 'restart');
  return pg_catalog.pg_reload_conf();
end
$$;

-- Whether a double worker is connected to this database (its application_name starts with 'pg_net').
create function net._worker_is_running()
returns bool
language sql
volatile
set search_path = ''
as $$
  select exists (
    select
    from pg_catalog.pg_stat_activity as a
    where a.datname = pg_catalog.current_database()
      and a.application_name like 'pg\_net%'
      and a.pid <> pg_catalog.pg_backend_pid()
  )
$$;

-- Blocks until a worker serves this database (pg_net waits on a condition variable; this polls).
create function net.wait_until_running()
returns void
language plpgsql
set search_path = ''
as $$
begin
  loop
    -- pg_stat_activity is a per-transaction snapshot; without this the loop would never see a change
    perform pg_catalog.pg_stat_clear_snapshot();
    exit when net._worker_is_running();
    perform pg_catalog.pg_sleep(0.05);
  end loop;
end
$$;
comment on function net.wait_until_running() is 'waits until the worker is running';

-- Raises pg_net's error when no worker serves this database.
create function net.check_worker_is_up()
returns void
language plpgsql
set search_path = ''
as $$
begin
  if not net._worker_is_running() then
    raise exception using
      message = 'the pg_net background worker is not up',
      detail  = 'the pg_net background worker is down due to an internal error and cannot process requests',
      hint    = 'make sure that you didn''t modify any of pg_net internal tables';
  end if;
end
$$;
comment on function net.check_worker_is_up() is 'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

-- ---------------------------------------------------------------------------------------------------
-- Requests (API: public). Each queues one row and wakes the worker at commit.
-- ---------------------------------------------------------------------------------------------------

-- Queues one request: `params` URL-encoded and appended to `url`'s query, then wakes the worker at commit.
-- Returns the request id. (pg_net repeats this in each request function; the double keeps it once.)
create function net._enqueue_request(
  method net.http_method, url text, params jsonb, headers jsonb, body bytea, timeout_milliseconds int
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (
    method,
    net._encode_url_with_params_array(
      url,
      (select coalesce(pg_catalog.array_agg(net._urlencode_string(p.key) || '=' || net._urlencode_string(p.value)), '{}')
       from pg_catalog.jsonb_each_text(params) as p)
    ),
    headers,
    body,
    timeout_milliseconds
  )
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

-- Queues a GET of `url` with `params` appended to its query string; returns the request id.
create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
)
returns bigint
language plpgsql
set search_path = ''
as $$
begin
  return net._enqueue_request('GET', url, params, headers, null, timeout_milliseconds);
end
$$;

-- Queues a POST of the JSON `body`; only `Content-Type: application/json` is accepted (added when
-- absent). Returns the request id.
create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  content_type text;
begin
  select h.value into content_type
  from pg_catalog.jsonb_each_text(coalesce(headers, '{}'::jsonb)) as h
  where pg_catalog.lower(h.key) = 'content-type'
  limit 1;

  if content_type is null then
    -- as in pg_net, NULL headers stay NULL (and a NULL-valued content-type key gets a second one)
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;

  return net._enqueue_request('POST', url, params, headers, pg_catalog.convert_to(body::text, 'UTF8'), timeout_milliseconds);
end
$$;

-- Queues a DELETE, with an optional JSON `body`; returns the request id.
create function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000,
  body jsonb default null
)
returns bigint
language plpgsql
set search_path = ''
as $$
begin
  return net._enqueue_request('DELETE', url, params, headers, pg_catalog.convert_to(body::text, 'UTF8'), timeout_milliseconds);
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Responses
-- ---------------------------------------------------------------------------------------------------

-- Polls every 50 ms until the response row for `request_id` exists (forever if it never will).
create function net._await_response(request_id bigint)
returns bool
language plpgsql
set search_path = ''
as $$
begin
  while not exists (select from net._http_response as r where r.id = request_id) loop
    perform pg_catalog.pg_sleep(0.05);
  end loop;
  return true;
end
$$;

-- The response for `request_id` as a result: ERROR with error_msg (or "not found", which is also what
-- a pending request looks like), else SUCCESS with status, headers and body. async = false waits.
create function net._http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
set search_path = ''
as $$
declare
  rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;

  select r.* into rec from net._http_response as r where r.id = request_id;

  if rec.id is null or rec.error_msg is not null then
    return row(
      'ERROR',
      coalesce(rec.error_msg, 'request matching request_id not found'),
      null
    )::net.http_response_result;
  end if;

  return row(
    'SUCCESS',
    'ok',
    row(rec.status_code, rec.headers, rec.content)::net.http_response
  )::net.http_response_result;
end
$$;

-- Deprecated. In pg_net 0.20.4 its PL/pgSQL body runs a SELECT without INTO, so after the notice every
-- call fails; the double fails the same way so that code relying on it breaks here too.
create function net.http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
set search_path = ''
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  raise exception 'query has no destination for result data'
    using errcode = '42601', hint = 'If you want to discard the results of a SELECT, use PERFORM instead.';
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------------

-- pg_net's own grants (functions keep the default EXECUTE for PUBLIC).
grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;

-- Supabase's extensions.grant_pg_net_access() event trigger, for the roles this cluster has.
do $$
declare
  r text;
begin
  foreach r in array array['postgres', 'anon', 'authenticated', 'service_role'] loop
    if exists (select from pg_catalog.pg_roles where rolname = r) then
      execute pg_catalog.format('grant usage on schema net to %I', r);
    end if;
  end loop;
end
$$;
