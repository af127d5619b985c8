-- The single-payment fast path on PostgreSQL: one server-side function per
-- operation, so an authorization, a settlement or a void is one round trip
-- (two with an Idempotency-Key: the sealed answer is written by the caller).
--
-- These functions decide exactly as qinqing.payments.service.execute does for a
-- list of one operation, in the same order and under the same locks: the link
-- FOR SHARE, then the payer's account FOR NO KEY UPDATE, then the payments
-- (ascending id, SKIP LOCKED when the account holds something); overdue holds
-- of the locked account are released first and stay released even when the
-- operation is refused. The refusal codes are the ones payments/rules.py
-- gives, checked in its order, and told to an institution as the engine tells
-- them (payments/probes.py: MUTUAL_AID_UNAVAILABLE, AUTHORIZE_RATE_LIMITED). tests/payments/test_fast_path_differential.py
-- runs random operation sequences through both and requires the same outcomes
-- and balances; change one, change the other.
--
-- Installed by the migrations (CREATE OR REPLACE): a change here ships as a new
-- migration that runs this file again.

CREATE OR REPLACE FUNCTION qinqing_idempotency_reserve(
  p_caller text, p_key text, p_operation text, p_hash text, p_now timestamptz,
  OUT verdict text, OUT status_code int, OUT response json)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  -- As qinqing.http.idempotency.reserve: a concurrent duplicate waits on the first
  -- request's uncommitted row and then replays its answer.
  FOR attempt IN 1..3 LOOP
    INSERT INTO idempotency_keys (caller, key, operation, request_hash, status_code,
                                  response, created_at)
    VALUES (p_caller, p_key, left(p_operation, 160), p_hash, 0, '{}'::json, p_now)
    ON CONFLICT DO NOTHING;
    SELECT k.request_hash, k.status_code, k.response INTO r
      FROM idempotency_keys k WHERE k.caller = p_caller AND k.key = p_key
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
      CONTINUE;  -- released by a refused request meanwhile: try again
    END IF;
    IF r.request_hash <> p_hash THEN
      verdict := 'mismatch';
    ELSIF r.status_code = 0 THEN
      verdict := 'go';
    ELSE
      verdict := 'replay';
      status_code := r.status_code;
      response := r.response;
    END IF;
    RETURN;
  END LOOP;
  verdict := 'mismatch';
END $$;

-- What every payment call checks first: the token (UNAUTHENTICATED), then the
-- Idempotency-Key if one is given (IDEMPOTENCY_MISMATCH, or REPLAY with the
-- stored answer). NULL code: go ahead.
CREATE OR REPLACE FUNCTION qinqing_payment_admit(
  p_token text, p_now timestamptz,
  p_caller text, p_key text, p_operation text, p_hash text,
  OUT code text, OUT replay_status int, OUT replay_response json)
LANGUAGE plpgsql AS $$
DECLARE
  v_verdict text;
BEGIN
  -- The token, read at every call, so a logout, a revoked token or a disabled
  -- client is refused at once even while the caller's principal is cached. (In
  -- PL/pgSQL, not a SQL function: that one was planned afresh at every call.)
  PERFORM 1 FROM access_tokens t JOIN api_clients c ON c.id = t.subject_id
   WHERE t.token_hash = p_token AND t.subject_kind = 'client'
     AND t.revoked_at IS NULL AND t.expires_at > p_now AND NOT c.disabled;
  IF NOT FOUND THEN
    code := 'UNAUTHENTICATED'; RETURN;
  END IF;
  IF p_key IS NOT NULL THEN
    SELECT r.verdict, r.status_code, r.response INTO v_verdict, replay_status, replay_response
      FROM qinqing_idempotency_reserve(p_caller, p_key, p_operation, p_hash, p_now) r;
    IF v_verdict = 'mismatch' THEN
      code := 'IDEMPOTENCY_MISMATCH';
    ELSIF v_verdict = 'replay' THEN
      code := 'REPLAY';
    END IF;
  END IF;
END $$;

-- Releases the overdue holds on the account p_account (the holder's personal
-- account or a quota) it can lock (others are left to the transaction holding
-- them) and locks the payment p_target, if given, with them. Returns the released
-- total and the target's row as it is after the release.
CREATE OR REPLACE FUNCTION qinqing_lock_payments(
  p_holder uuid, p_account uuid, p_target uuid, p_now timestamptz, p_skip boolean,
  OUT released bigint, OUT t_found boolean, OUT t_status text, OUT t_amount bigint,
  OUT t_account uuid, OUT t_expires timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  released := 0;
  t_found := false;
  IF p_skip THEN
    FOR r IN SELECT p.id, p.status, p.amount_fen, p.account_id, p.expires_at
               FROM payments p
              WHERE p.holder_id = p_holder
                AND (p.id = p_target OR (p.account_id = p_account AND p.status = 'authorized'
                                         AND p.expires_at <= p_now))
              ORDER BY p.id FOR NO KEY UPDATE SKIP LOCKED LOOP
      IF r.status = 'authorized' AND r.expires_at <= p_now THEN
        UPDATE payments SET status = 'expired', resolved_at = p_now
         WHERE holder_id = p_holder AND id = r.id;
        released := released + r.amount_fen;
        r.status := 'expired';
      END IF;
      IF r.id = p_target THEN
        t_found := true; t_status := r.status; t_amount := r.amount_fen;
        t_account := r.account_id; t_expires := r.expires_at;
      END IF;
    END LOOP;
  ELSIF p_target IS NOT NULL THEN
    -- Nothing held on the account: no overdue hold, and the target waits for no one.
    SELECT p.status, p.amount_fen, p.account_id, p.expires_at
      INTO t_status, t_amount, t_account, t_expires
      FROM payments p WHERE p.holder_id = p_holder AND p.id = p_target
       FOR NO KEY UPDATE;
    t_found := t_status IS NOT NULL;
  END IF;
END $$;

-- The signature before institution probes (0010_payment_probes): replaced below.
DROP FUNCTION IF EXISTS qinqing_payment_authorize(
  text, text, text, timestamptz, int, text, text, bigint, text, uuid, text[], int[],
  text, text, text, text);

-- The refusal of an authorization, once what it reads is known, in the engine's
-- order: the request's own mistakes, the client's hour (payments/rules.py
-- probe_window), then payments/rules.py's. NULL code: it passes. The one copy of
-- this order in SQL, for the single call and for a batch decided as a set.
-- p_failures/p_started: the probe counter as read (NULL: none); p_available: the
-- account's balance less what it holds (NULL: no account).
CREATE OR REPLACE FUNCTION qinqing_authorize_refusal(
  p_now timestamptz, p_region text, p_amount bigint, p_taken boolean,
  p_failures int, p_started timestamptz, p_probe_limit int,
  p_visible boolean, p_link uuid, p_h_region text, p_m_region text,
  p_scheme text, p_status text, p_limit bigint, p_used bigint,
  p_available bigint, p_quota boolean,
  OUT code text, OUT retry_after int)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF p_taken THEN
    code := 'PAYMENT_REFERENCE_EXISTS';
    RETURN;
  END IF;
  IF p_started IS NULL OR p_failures IS NULL OR p_now - p_started >= interval '1 hour' THEN
    p_failures := 0; p_started := p_now;
  END IF;
  IF p_failures >= p_probe_limit THEN
    code := 'AUTHORIZE_RATE_LIMITED';
    retry_after := greatest(1, ceil(extract(epoch FROM p_started + interval '1 hour' - p_now)));
  ELSIF NOT p_visible
        OR (p_link IS NULL AND NOT (p_h_region = p_m_region AND p_m_region = p_region)) THEN
    code := 'PERSON_NOT_FOUND';
  ELSIF p_link IS NULL THEN
    code := 'NO_MUTUAL_AID_LINK';
  ELSIF p_scheme <> 'employee' THEN
    code := 'HOLDER_NOT_EMPLOYEE';
  ELSIF p_status <> 'active' THEN
    code := 'PAYER_NOT_ACTIVE';
  ELSIF p_limit IS NOT NULL AND p_used + p_amount > p_limit THEN
    code := 'YEARLY_LIMIT_EXCEEDED';
  ELSIF p_amount > coalesce(p_available, 0) THEN
    code := CASE WHEN p_quota THEN 'QUOTA_INSUFFICIENT' ELSE 'INSUFFICIENT_BALANCE' END;
  END IF;
END $$;

-- payments/rules.py ABOUT_THE_PERSONS: the refusals an institution is told as one
-- code (MUTUAL_AID_UNAVAILABLE) unless it was shown the member's voucher.
CREATE OR REPLACE FUNCTION qinqing_about_the_persons(p_code text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_code IN ('PERSON_NOT_FOUND', 'NO_MUTUAL_AID_LINK', 'HOLDER_NOT_EMPLOYEE',
                    'PAYER_NOT_ACTIVE', 'YEARLY_LIMIT_EXCEEDED', 'INSUFFICIENT_BALANCE',
                    'QUOTA_INSUFFICIENT')
$$;

-- payments/formulas.py counts_toward_limit: what a link has used of its yearly limit
-- in p_year, its settled payments and its open holds (the single call and the
-- set-wise batch both read it here). PL/pgSQL, not SQL: its query's plan is kept
-- for the connection, where a SQL function's would be planned again in every
-- transaction.
CREATE OR REPLACE FUNCTION qinqing_link_usage(
  p_holder uuid, p_link uuid, p_year int, p_now timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT coalesce(sum(CASE WHEN p.status = 'settled' THEN p.settled_fen
                                   ELSE p.amount_fen END), 0)::bigint
            FROM payments p
           WHERE p.holder_id = p_holder AND p.link_id = p_link AND p.year = p_year
             AND (p.status = 'settled' OR (p.status = 'authorized' AND p.expires_at > p_now)));
END $$;

-- One authorization by two ID numbers, once the caller is admitted (the body of
-- qinqing_payment_authorize and of each authorization of qinqing_payment_batch;
-- payments by voucher stay on the engine). A refusal about the persons is
-- answered MUTUAL_AID_UNAVAILABLE, with the real code in `detail` and the rows it
-- named for the caller's audit entry, unless the institution claimed a family
-- voucher for the pair shown after p_shown_since; it is then counted against the
-- client's hour (login_throttle row p_probe_key, payments/probes.py), and past
-- p_probe_limit of them the client's calls are AUTHORIZE_RATE_LIMITED
-- (`retry_after` seconds) until the hour is over.
DROP FUNCTION IF EXISTS qinqing_authorize_op(
  text, text, timestamptz, int, text, text, bigint, text, uuid, text[], int[], text, int,
  timestamptz);
CREATE OR REPLACE FUNCTION qinqing_authorize_op(
  p_client text, p_region text, p_now timestamptz, p_year int,
  p_holder_ix text, p_member_ix text, p_amount bigint, p_reference text,
  p_payment_id uuid, p_policy_regions text[], p_policy_hours int[],
  p_probe_key text, p_probe_limit int, p_shown_since timestamptz,
  p_holder uuid DEFAULT NULL, p_member uuid DEFAULT NULL, p_by_voucher boolean DEFAULT false,
  OUT code text, OUT payment_id uuid, OUT status text, OUT amount_fen bigint,
  OUT settled_fen bigint, OUT released_fen bigint, OUT expires_at timestamptz,
  OUT detail text, OUT probe_holder uuid, OUT probe_member uuid, OUT probe_link uuid,
  OUT probe_failures int, OUT retry_after int)
LANGUAGE plpgsql AS $$
DECLARE
  h_id uuid; h_region text; h_status text; h_scheme text;
  m_id uuid; m_region text;
  l_id uuid; l_region text; l_limit bigint; l_quota boolean := false;
  a_id uuid; a_balance bigint; a_held bigint;
  v_visible boolean;
  v_released bigint := 0;
  v_used bigint := 0;
  v_hours int;
  v_failures int; v_started timestamptz; v_locked timestamptz;
  v_taken boolean;
BEGIN
  IF p_amount <= 0 THEN code := 'AMOUNT_INVALID'; RETURN; END IF;

  -- The two persons: named by a voucher (p_by_voucher: p_holder, p_member), else
  -- through the ID-number look-up table: the number's row, then the person's, each
  -- found by its own distribution key (on a Citus coordinator two single-shard
  -- queries; the join of the two tables would need a repartition).
  IF p_by_voucher THEN
    h_id := p_holder; m_id := p_member;
  ELSE
    SELECT n.person_id INTO h_id FROM person_id_numbers n WHERE n.id_number_index = p_holder_ix;
    SELECT n.person_id INTO m_id FROM person_id_numbers n WHERE n.id_number_index = p_member_ix;
  END IF;
  SELECT p.id, p.region_code, p.status, p.scheme INTO h_id, h_region, h_status, h_scheme
    FROM persons p WHERE p.id = h_id;
  SELECT p.id, p.region_code INTO m_id, m_region FROM persons p WHERE p.id = m_id;
  -- Neither party insured in the institution's region: nothing is locked, and the
  -- answer is an unknown number's.
  v_visible := h_id IS NOT NULL AND m_id IS NOT NULL
               AND NOT (p_region IS DISTINCT FROM h_region AND p_region IS DISTINCT FROM m_region);

  IF v_visible THEN
    -- Lock order: the link (FOR SHARE, against a concurrent unbind), the account,
    -- the payments.
    SELECT fl.id, fl.region_code, fl.mutual_aid_yearly_limit_fen, fl.via_quota
      INTO l_id, l_region, l_limit, l_quota
      FROM family_links fl
     WHERE fl.holder_id = h_id AND fl.member_id = m_id
       AND fl.status = 'active' AND fl.mutual_aid IS TRUE
     ORDER BY fl.id FOR SHARE;
    -- The account the link pays from: a cross-region link's quota, else the
    -- personal account (payments/engine.py _authorize).
    l_quota := coalesce(l_quota, false);
    SELECT a.id, a.balance_fen, a.held_fen INTO a_id, a_balance, a_held
      FROM ledger_accounts a
     WHERE a.person_id = h_id
       AND CASE WHEN l_quota THEN a.kind = 'quota' AND a.link_id = l_id
                ELSE a.kind = 'personal' END
       FOR NO KEY UPDATE;
    IF a_held > 0 THEN
      SELECT lk2.released INTO v_released
        FROM qinqing_lock_payments(h_id, a_id, NULL, p_now, true) lk2;
      a_held := a_held - v_released;
    END IF;
    IF l_limit IS NOT NULL THEN
      v_used := qinqing_link_usage(h_id, l_id, p_year, p_now);
    END IF;
  END IF;

  -- The decision (qinqing_authorize_refusal): the reference, then the client's hour
  -- (which an authorization by voucher does not count against: no limit for it).
  v_taken := EXISTS (SELECT 1 FROM payment_references r
                      WHERE r.client_id = p_client AND r.reference = p_reference);
  IF p_by_voucher THEN
    p_probe_limit := NULL;
  ELSIF NOT v_taken THEN
    SELECT t.failures, t.window_started_at INTO v_failures, v_started
      FROM login_throttle t WHERE t.key = p_probe_key;
  END IF;
  SELECT d.code, d.retry_after INTO code, retry_after
    FROM qinqing_authorize_refusal(p_now, p_region, p_amount, v_taken, v_failures, v_started,
                                   p_probe_limit, v_visible, l_id, h_region, m_region,
                                   h_scheme, h_status, l_limit, v_used, a_balance - a_held,
                                   l_quota) d;

  -- Told as one code unless the institution was shown the member's voucher
  -- (vouchers.service.shown_to), or is paying by it; then counted.
  IF qinqing_about_the_persons(code) AND NOT p_by_voucher
     AND NOT (h_id IS NOT NULL AND m_id IS NOT NULL AND EXISTS (
       SELECT 1 FROM vouchers v
        WHERE v.person_id = h_id AND v.subject_id = m_id AND v.link_id IS NOT NULL
          AND v.claimed_by = p_client AND v.created_at > p_shown_since)) THEN
    detail := code;
    code := 'MUTUAL_AID_UNAVAILABLE';
    probe_holder := h_id; probe_member := m_id; probe_link := l_id;
    -- The counter, locked after the payments (payments/probes.py count).
    INSERT INTO login_throttle (key, failures, window_started_at)
    VALUES (p_probe_key, 0, p_now) ON CONFLICT DO NOTHING;
    SELECT t.failures, t.window_started_at INTO v_failures, v_started
      FROM login_throttle t WHERE t.key = p_probe_key FOR NO KEY UPDATE;
    IF p_now - v_started >= interval '1 hour' THEN
      v_failures := 0; v_started := p_now;
    END IF;
    probe_failures := v_failures + 1;
    -- Worked out here, not in the UPDATE: a Citus coordinator refuses a CASE over a
    -- non-immutable expression (timestamptz + interval) in a distributed UPDATE.
    v_locked := CASE WHEN probe_failures >= p_probe_limit
                     THEN v_started + interval '1 hour' END;
    UPDATE login_throttle t
       SET failures = probe_failures, window_started_at = v_started, last_failure_at = p_now,
           locked_until = v_locked
     WHERE t.key = p_probe_key;
  END IF;

  IF code IS NULL THEN
    v_hours := p_policy_hours[array_position(p_policy_regions, l_region)];
    IF v_hours IS NULL THEN
      code := 'REGION_NOT_FOUND';
    END IF;
  END IF;
  IF code IS NULL THEN
    -- The reference's look-up row first: one taken meanwhile refuses here.
    INSERT INTO payment_references (client_id, reference, holder_id, payment_id)
    VALUES (p_client, p_reference, h_id, p_payment_id) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      code := 'PAYMENT_REFERENCE_EXISTS';
    END IF;
  END IF;
  IF code IS NULL THEN
    expires_at := p_now + make_interval(hours => v_hours);
    INSERT INTO payment_keys (payment_id, holder_id, client_id)
    VALUES (p_payment_id, h_id, p_client);
    INSERT INTO payments (holder_id, id, client_id, reference, link_id, member_id,
                          account_id, amount_fen, settled_fen, status, year,
                          created_at, expires_at, resolved_at, cleared_at)
    VALUES (h_id, p_payment_id, p_client, p_reference, l_id, m_id, a_id, p_amount, NULL,
            'authorized', p_year, p_now, expires_at, NULL, NULL);
    UPDATE ledger_accounts SET held_fen = a_held + p_amount
     WHERE person_id = h_id AND id = a_id;
    payment_id := p_payment_id; status := 'authorized'; amount_fen := p_amount;
    released_fen := 0;
  ELSIF v_released > 0 THEN
    UPDATE ledger_accounts SET held_fen = a_held WHERE person_id = h_id AND id = a_id;
  END IF;
END $$;

-- An institution's authorization: the caller admitted (token, Idempotency-Key),
-- then qinqing_authorize_op.
CREATE OR REPLACE FUNCTION qinqing_payment_authorize(
  p_token text, p_client text, p_region text, p_now timestamptz, p_year int,
  p_holder_ix text, p_member_ix text, p_amount bigint, p_reference text,
  p_payment_id uuid, p_policy_regions text[], p_policy_hours int[],
  p_probe_key text, p_probe_limit int, p_shown_since timestamptz,
  p_caller text, p_key text, p_operation text, p_hash text,
  OUT code text, OUT payment_id uuid, OUT status text, OUT amount_fen bigint,
  OUT settled_fen bigint, OUT released_fen bigint, OUT expires_at timestamptz,
  OUT replay_status int, OUT replay_response json,
  OUT detail text, OUT probe_holder uuid, OUT probe_member uuid, OUT probe_link uuid,
  OUT probe_failures int, OUT retry_after int)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT g.code, g.replay_status, g.replay_response INTO code, replay_status, replay_response
    FROM qinqing_payment_admit(p_token, p_now, p_caller, p_key, p_operation, p_hash) g;
  IF code IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT o.code, o.payment_id, o.status, o.amount_fen, o.settled_fen, o.released_fen,
         o.expires_at, o.detail, o.probe_holder, o.probe_member, o.probe_link,
         o.probe_failures, o.retry_after
    INTO code, payment_id, status, amount_fen, settled_fen, released_fen, expires_at,
         detail, probe_holder, probe_member, probe_link, probe_failures, retry_after
    FROM qinqing_authorize_op(p_client, p_region, p_now, p_year, p_holder_ix, p_member_ix,
                              p_amount, p_reference, p_payment_id, p_policy_regions,
                              p_policy_hours, p_probe_key, p_probe_limit, p_shown_since) o;
END $$;

-- An authorization by a family e-voucher (vouchers/service.py execute): the caller
-- admitted, the voucher found by its token's look-up hash (NULL: a token we did not
-- sign) and locked first — the order is vouchers, links, accounts, payments —
-- then judged as vouchers/rules.py pay_refusal judges it (not ours or its link
-- ended, not this region's, used or claimed by another institution, expired, a
-- person's own voucher), then qinqing_authorize_op for its shower (the holder) and
-- its subject (the member), told its real refusal and not counted against the
-- client's hour. A voucher that pays is used up in the same transaction.
CREATE OR REPLACE FUNCTION qinqing_payment_authorize_voucher(
  p_token text, p_client text, p_region text, p_now timestamptz, p_year int,
  p_token_hash text, p_amount bigint, p_reference text, p_payment_id uuid,
  p_policy_regions text[], p_policy_hours int[],
  p_caller text, p_key text, p_operation text, p_hash text,
  OUT code text, OUT payment_id uuid, OUT status text, OUT amount_fen bigint,
  OUT settled_fen bigint, OUT released_fen bigint, OUT expires_at timestamptz,
  OUT replay_status int, OUT replay_response json)
LANGUAGE plpgsql AS $$
DECLARE
  v_owner uuid; v_id uuid;
  v record;
  v_regions text[];
  v_link_status text;
BEGIN
  SELECT g.code, g.replay_status, g.replay_response INTO code, replay_status, replay_response
    FROM qinqing_payment_admit(p_token, p_now, p_caller, p_key, p_operation, p_hash) g;
  IF code IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT t.person_id, t.voucher_id INTO v_owner, v_id
    FROM voucher_tokens t WHERE t.token_hash = p_token_hash;
  SELECT x.subject_id, x.link_id, x.claimed_by, x.claimed_at, x.used_at, x.expires_at
    INTO v
    FROM vouchers x WHERE x.person_id = v_owner AND x.id = v_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    code := 'VOUCHER_INVALID';
    RETURN;
  END IF;
  IF v.link_id IS NOT NULL THEN
    SELECT fl.status INTO v_link_status
      FROM family_links fl WHERE fl.holder_id = v_owner AND fl.id = v.link_id;
  END IF;
  v_regions := ARRAY[(SELECT p.region_code FROM persons p WHERE p.id = v_owner),
                     (SELECT p.region_code FROM persons p WHERE p.id = v.subject_id)];
  code := CASE
    WHEN v.link_id IS NOT NULL AND v_link_status IS DISTINCT FROM 'active' THEN 'VOUCHER_INVALID'
    WHEN p_region IS NULL OR NOT (p_region = ANY(v_regions)) THEN 'REGION_MISMATCH'
    WHEN v.used_at IS NOT NULL OR v.claimed_by <> p_client THEN 'VOUCHER_USED'
    WHEN v.expires_at IS NULL OR v.expires_at <= p_now THEN 'VOUCHER_EXPIRED'
    WHEN v.link_id IS NULL THEN 'VOUCHER_NOT_FAMILY'
  END;
  IF code IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT o.code, o.payment_id, o.status, o.amount_fen, o.settled_fen, o.released_fen,
         o.expires_at
    INTO code, payment_id, status, amount_fen, settled_fen, released_fen, expires_at
    FROM qinqing_authorize_op(p_client, p_region, p_now, p_year, NULL, NULL, p_amount,
                              p_reference, p_payment_id, p_policy_regions, p_policy_hours,
                              NULL, NULL, NULL, v_owner, v.subject_id, true) o;
  IF code IS NULL THEN
    UPDATE vouchers
       SET used_at = p_now, payment_id = p_payment_id, claimed_by = p_client,
           claimed_at = coalesce(v.claimed_at, p_now)
     WHERE person_id = v_owner AND id = v_id;
  END IF;
END $$;

-- One settle (p_settle not NULL: the amount to post) or void (p_settle NULL),
-- once the caller is admitted (the body of qinqing_payment_resolve and of each
-- settle or void of qinqing_payment_batch).
CREATE OR REPLACE FUNCTION qinqing_resolve_op(
  p_client text, p_region text, p_now timestamptz, p_payment_id uuid, p_settle bigint,
  OUT code text, OUT payment_id uuid, OUT status text, OUT amount_fen bigint,
  OUT settled_fen bigint, OUT released_fen bigint, OUT expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  v_holder uuid;
  v_institution uuid;
  v_transfer uuid;
  a_id uuid; a_held bigint;
  lk record;
BEGIN
  -- Only the institution's own payments, found through their key.
  SELECT k.holder_id INTO v_holder FROM payment_keys k
   WHERE k.payment_id = p_payment_id AND k.client_id = p_client;
  IF v_holder IS NULL THEN
    code := 'PAYMENT_NOT_FOUND'; RETURN;
  END IF;
  -- The account the payment holds on (personal or a quota; it never changes, so it
  -- is read without a lock), then that account locked before the payment.
  SELECT p.account_id INTO a_id FROM payments p
   WHERE p.holder_id = v_holder AND p.id = p_payment_id;
  SELECT a.held_fen INTO a_held
    FROM ledger_accounts a WHERE a.person_id = v_holder AND a.id = a_id FOR NO KEY UPDATE;
  IF p_settle IS NOT NULL THEN
    -- The institution's account: named by the entry, never locked here.
    SELECT s.id INTO v_institution FROM ledger_system_accounts s
     WHERE s.code = 'institution:' || p_client;
    IF v_institution IS NULL THEN
      INSERT INTO ledger_system_accounts (id, code, kind, region_code, balance_fen,
                                          allow_negative, created_at)
      VALUES (gen_random_uuid(), 'institution:' || p_client, 'institution',
              coalesce(p_region, ''), 0, false, p_now)
      ON CONFLICT DO NOTHING;
      SELECT s.id INTO v_institution FROM ledger_system_accounts s
       WHERE s.code = 'institution:' || p_client;
    END IF;
  END IF;
  SELECT * INTO lk FROM qinqing_lock_payments(v_holder, a_id, p_payment_id, p_now,
                                              coalesce(a_held, 0) > 0);
  IF NOT lk.t_found THEN
    code := 'PAYMENT_ALREADY_RESOLVED';  -- another transaction holds it
  ELSIF lk.t_status = 'expired' THEN
    code := 'PAYMENT_EXPIRED';
  ELSIF lk.t_status <> 'authorized' THEN
    code := 'PAYMENT_ALREADY_RESOLVED';
  ELSIF p_settle IS NOT NULL AND p_settle <= 0 THEN
    code := 'AMOUNT_INVALID';
  ELSIF p_settle IS NOT NULL AND p_settle > lk.t_amount THEN
    code := 'SETTLE_EXCEEDS_HOLD';
  END IF;
  IF code IS NOT NULL THEN
    IF lk.released > 0 THEN
      UPDATE ledger_accounts SET held_fen = held_fen - lk.released
       WHERE person_id = v_holder AND id = a_id;
    END IF;
    RETURN;
  END IF;

  payment_id := p_payment_id; amount_fen := lk.t_amount; expires_at := lk.t_expires;
  IF p_settle IS NULL THEN
    UPDATE payments SET status = 'voided', resolved_at = p_now
     WHERE holder_id = v_holder AND id = p_payment_id;
    UPDATE ledger_accounts SET held_fen = held_fen - lk.released - lk.t_amount
     WHERE person_id = v_holder AND id = lk.t_account;
    status := 'voided'; released_fen := lk.t_amount;
    RETURN;
  END IF;
  UPDATE payments SET status = 'settled', settled_fen = p_settle, resolved_at = p_now
   WHERE holder_id = v_holder AND id = p_payment_id;
  v_transfer := gen_random_uuid();
  INSERT INTO ledger_transfers (person_id, id, debit_account_id, credit_account_id,
                                amount_fen, kind, payment_id, contribution_id, created_at)
  VALUES (v_holder, v_transfer, lk.t_account, v_institution, p_settle, 'payment',
          p_payment_id, NULL, p_now);
  INSERT INTO ledger_entries (person_id, id, transfer_id, account_id, amount_fen, created_at)
  VALUES (v_holder, gen_random_uuid(), v_transfer, lk.t_account, -p_settle, p_now),
         (v_holder, gen_random_uuid(), v_transfer, v_institution, p_settle, p_now);
  UPDATE ledger_accounts
     SET held_fen = held_fen - lk.released - lk.t_amount, balance_fen = balance_fen - p_settle
   WHERE person_id = v_holder AND id = lk.t_account;
  status := 'settled'; settled_fen := p_settle; released_fen := lk.t_amount - p_settle;
END $$;

-- An institution's settle or void: the caller admitted, then qinqing_resolve_op.
CREATE OR REPLACE FUNCTION qinqing_payment_resolve(
  p_token text, p_client text, p_region text, p_now timestamptz,
  p_payment_id uuid, p_settle bigint,
  p_caller text, p_key text, p_operation text, p_hash text,
  OUT code text, OUT payment_id uuid, OUT status text, OUT amount_fen bigint,
  OUT settled_fen bigint, OUT released_fen bigint, OUT expires_at timestamptz,
  OUT replay_status int, OUT replay_response json)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT g.code, g.replay_status, g.replay_response INTO code, replay_status, replay_response
    FROM qinqing_payment_admit(p_token, p_now, p_caller, p_key, p_operation, p_hash) g;
  IF code IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT o.code, o.payment_id, o.status, o.amount_fen, o.settled_fen, o.released_fen,
         o.expires_at
    INTO code, payment_id, status, amount_fen, settled_fen, released_fen, expires_at
    FROM qinqing_resolve_op(p_client, p_region, p_now, p_payment_id, p_settle) o;
END $$;

-- The holders a batch locks, in lock order and in groups that one locking statement
-- each can take: on one database a single group, in person order (the global
-- (person, id) order). On a Citus cluster a locking statement must stay on one
-- shard, so each person is a group of its own, still in person order: the order
-- every other path locks in there (qinqing.kit.locking). Groups by shard (one
-- statement per shard group) were tried: they lock in another order, and a batch
-- and a contribution or a single payment then deadlocked (docs/decisions.md).
CREATE OR REPLACE FUNCTION qinqing_lock_groups(p_holders uuid[])
RETURNS TABLE (holders uuid[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
    RETURN QUERY EXECUTE
      'SELECT ARRAY[h]
         FROM (SELECT DISTINCT h FROM unnest($1) AS h WHERE h IS NOT NULL) d
        WHERE EXISTS (SELECT 1 FROM pg_dist_partition p
                       WHERE p.logicalrelid = ''persons''::regclass AND p.partmethod = ''h'')
        ORDER BY h'
      USING p_holders;
    IF FOUND THEN RETURN; END IF;
  END IF;
  RETURN QUERY SELECT array_agg(DISTINCT h ORDER BY h) FROM unnest(p_holders) AS h
                WHERE h IS NOT NULL HAVING count(*) > 0;
END $$;

-- A batch of up to a thousand operations in one call and one transaction, each
-- decided as its single call would be, in order, each seeing the ones before it
-- (payments/fast_batch.py; the engine's batch is the reference, held to this by
-- the differential test). Element i of the arrays is operation i: p_kind is
-- 'authorize', 'settle' or 'void'; p_refused an answer the caller already knows
-- (an amount that is not positive, an ID number that does not parse, a payment id
-- that is no UUID); p_id the new payment's id (authorize) or the one to resolve;
-- p_amount the amount to hold or to settle. One row per operation, `op` its
-- 0-based index; or one row with `op` NULL when the caller is not admitted
-- (UNAUTHENTICATED, IDEMPOTENCY_MISMATCH, REPLAY with the stored answer).
--
-- The single calls lock as they go; a batch takes the links (FOR SHARE) and the
-- payers' accounts first, each set in one statement in the global order
-- (docs/ledger.md), so its later per-operation locks are ones it already holds
-- and it can wait on nobody out of order.
CREATE OR REPLACE FUNCTION qinqing_payment_batch(
  p_token text, p_client text, p_region text, p_now timestamptz, p_year int,
  p_kind text[], p_refused text[], p_holder_ix text[], p_member_ix text[],
  p_amount bigint[], p_reference text[], p_id uuid[],
  p_policy_regions text[], p_policy_hours int[],
  p_probe_key text, p_probe_limit int, p_shown_since timestamptz,
  p_caller text, p_key text, p_operation text, p_hash text)
RETURNS TABLE (
  op int, code text, payment_id uuid, status text, amount_fen bigint,
  settled_fen bigint, released_fen bigint, expires_at timestamptz,
  replay_status int, replay_response json,
  detail text, probe_holder uuid, probe_member uuid, probe_link uuid,
  probe_failures int, retry_after int)
LANGUAGE plpgsql
-- Its statements join arrays whose length the planner cannot see, so their
-- estimates are far too high, which would start JIT compilation (70 ms a batch).
SET jit = off AS $$
DECLARE
  g record;
  a record;
  r record;
  v_ix text[];
  n_ix text[]; n_person uuid[];
  w_id uuid[]; w_region text[];
  v_h uuid[]; v_m uuid[];
  v_t uuid[]; t_h uuid[]; t_id uuid[]; ta_h uuid[]; ta_a uuid[];
  l_h uuid[]; l_m uuid[]; l_id uuid[]; l_q boolean[];
  w_personal uuid[]; w_quota uuid[];
  a_p uuid[]; a_id uuid[]; a_kind text[]; a_link uuid[]; w_acc_p uuid[]; w_acc uuid[];
  v_all uuid[]; v_one uuid; v_ms uuid[]; v_ids uuid[];
BEGIN
  SELECT x.code, x.replay_status, x.replay_response INTO g
    FROM qinqing_payment_admit(p_token, p_now, p_caller, p_key, p_operation, p_hash) x;
  IF g.code IS NOT NULL THEN
    code := g.code; replay_status := g.replay_status; replay_response := g.replay_response;
    RETURN NEXT;
    RETURN;
  END IF;

  -- The persons of the authorizations: the numbers' rows, then the persons' rows,
  -- each statement by its own table's distribution key (a Citus coordinator cannot
  -- join the two without a repartition). The pairs whose persons are visible to the
  -- institution (one of them insured in its region), as qinqing_authorize_op finds them.
  v_ix := p_holder_ix || p_member_ix;
  SELECT array_agg(n.id_number_index), array_agg(n.person_id) INTO n_ix, n_person
    FROM person_id_numbers n WHERE n.id_number_index = ANY(v_ix);
  SELECT array_agg(p.id), array_agg(p.region_code) INTO w_id, w_region
    FROM persons p WHERE p.id = ANY(n_person);
  SELECT array_agg(q.h), array_agg(q.m) INTO v_h, v_m
    FROM (SELECT DISTINCT hn.p AS h, mn.p AS m
            FROM unnest(p_kind, p_refused, p_holder_ix, p_member_ix) AS u(k, f, hx, mx)
            JOIN unnest(n_ix, n_person) AS hn(ix, p) ON hn.ix = u.hx
            JOIN unnest(n_ix, n_person) AS mn(ix, p) ON mn.ix = u.mx
            JOIN unnest(w_id, w_region) AS hp(id, r) ON hp.id = hn.p
            JOIN unnest(w_id, w_region) AS mp(id, r) ON mp.id = mn.p
           WHERE u.k = 'authorize' AND u.f IS NULL
             AND NOT (p_region IS DISTINCT FROM hp.r AND p_region IS DISTINCT FROM mp.r)) q;
  -- The payments to resolve: their holders (the key rows), then their accounts.
  v_t := ARRAY(SELECT u.t FROM unnest(p_kind, p_refused, p_id) AS u(k, f, t)
                WHERE u.k IN ('settle', 'void') AND u.f IS NULL);
  SELECT array_agg(k.holder_id), array_agg(k.payment_id) INTO t_h, t_id
    FROM payment_keys k WHERE k.payment_id = ANY(v_t) AND k.client_id = p_client;
  SELECT array_agg(p.holder_id), array_agg(p.account_id) INTO ta_h, ta_a
    FROM unnest(t_h, t_id) AS w(h, i)
    JOIN payments p ON p.holder_id = w.h AND p.id = w.i;

  -- The locks, in the global order, one group of holders at a time
  -- (qinqing_lock_groups: all of them at once on one database, one person at a
  -- time on Citus): the links FOR SHARE, then every account the operations pay
  -- from or hold on — an authorization's payer (its link's quota when the link is
  -- across regions, else the holder's personal account) and each payment to
  -- resolve's account.
  v_all := coalesce(v_h, '{}') || coalesce(ta_h, '{}');
  l_h := '{}'; l_m := '{}'; l_id := '{}'; l_q := '{}';
  -- A group of one person (Citus) is locked by statements that name it by equality
  -- and take plain arrays, which Citus runs on its fast router path; a larger group
  -- (one database) by one statement for all.
  FOR g IN SELECT * FROM qinqing_lock_groups(v_h) LOOP
    IF cardinality(g.holders) = 1 THEN
      v_one := g.holders[1];
      v_ms := ARRAY(SELECT w.m FROM unnest(v_h, v_m) AS w(h, m) WHERE w.h = v_one);
      FOR r IN SELECT fl.holder_id, fl.member_id, fl.id, coalesce(fl.via_quota, false) AS q
                 FROM family_links fl
                WHERE fl.holder_id = v_one AND fl.member_id = ANY(v_ms)
                  AND fl.status = 'active' AND fl.mutual_aid IS TRUE
                ORDER BY fl.id FOR SHARE LOOP
        l_h := l_h || r.holder_id; l_m := l_m || r.member_id; l_id := l_id || r.id;
        l_q := l_q || r.q;
      END LOOP;
    ELSE
      FOR r IN SELECT fl.holder_id, fl.member_id, fl.id, coalesce(fl.via_quota, false) AS q
                 FROM family_links fl
                WHERE fl.holder_id = ANY(g.holders)
                  AND (fl.holder_id, fl.member_id) IN (SELECT * FROM unnest(v_h, v_m))
                  AND fl.status = 'active' AND fl.mutual_aid IS TRUE
                ORDER BY fl.holder_id, fl.id FOR SHARE LOOP
        l_h := l_h || r.holder_id; l_m := l_m || r.member_id; l_id := l_id || r.id;
        l_q := l_q || r.q;
      END LOOP;
    END IF;
  END LOOP;
  SELECT array_agg(DISTINCT w.h) FILTER (WHERE NOT coalesce(c.q, false)),
         array_agg(DISTINCT c.id) FILTER (WHERE c.q)
    INTO w_personal, w_quota
    FROM unnest(v_h, v_m) AS w(h, m)
    LEFT JOIN (SELECT DISTINCT ON (x.h, x.m) x.h, x.m, x.id, x.q
                 FROM unnest(l_h, l_m, l_id, l_q) AS x(h, m, id, q)
                ORDER BY x.h, x.m, x.id) c ON c.h = w.h AND c.m = w.m;
  -- The accounts are picked from a plain read first: on Citus a locking statement
  -- may filter its distribution column once (a second array of persons beside the
  -- group's defeats the shard pruning, and Citus refuses the lock); pairs are
  -- matched by a join, never by two arrays side by side (an index scan would try
  -- every combination of the two).
  SELECT array_agg(la.person_id), array_agg(la.id), array_agg(la.kind), array_agg(la.link_id)
    INTO a_p, a_id, a_kind, a_link
    FROM ledger_accounts la
   WHERE la.person_id = ANY(v_all) AND la.kind IN ('personal', 'quota');
  SELECT array_agg(x.p), array_agg(x.id) INTO w_acc_p, w_acc
    FROM (SELECT x.p, x.id FROM unnest(a_p, a_id, a_kind, a_link) AS x(p, id, kind, link)
           WHERE (x.kind = 'personal' AND x.p = ANY(w_personal))
              OR (x.kind = 'quota' AND x.link = ANY(w_quota))
          UNION
          SELECT x.p, x.id FROM unnest(ta_h, ta_a) AS x(p, id)) x;
  FOR g IN SELECT * FROM qinqing_lock_groups(v_all) LOOP
    IF cardinality(g.holders) = 1 THEN
      v_one := g.holders[1];
      v_ids := ARRAY(SELECT x.id FROM unnest(w_acc_p, w_acc) AS x(p, id) WHERE x.p = v_one);
      PERFORM 1 FROM ledger_accounts la
       WHERE la.person_id = v_one AND la.id = ANY(v_ids)
       ORDER BY la.id FOR NO KEY UPDATE;
    ELSE
      PERFORM 1 FROM ledger_accounts la
       WHERE la.person_id = ANY(g.holders)
         AND (la.person_id, la.id) IN (SELECT * FROM unnest(w_acc_p, w_acc))
       ORDER BY la.person_id, la.id FOR NO KEY UPDATE;
    END IF;
  END LOOP;

  IF NOT ('settle' = ANY(p_kind) OR 'void' = ANY(p_kind)) THEN
    -- Authorizations only: decided as a set (qinqing_authorize_set), unless a
    -- reference was taken meanwhile; then one at a time below.
    BEGIN
      RETURN QUERY
      SELECT s.op, s.code, s.payment_id, s.status, s.amount_fen, s.settled_fen,
             s.released_fen, s.expires_at, NULL::int, NULL::json, s.detail,
             s.probe_holder, s.probe_member, s.probe_link, s.probe_failures, s.retry_after
        FROM qinqing_authorize_set(p_client, p_region, p_now, p_year, p_refused,
                                   p_holder_ix, p_member_ix, p_amount, p_reference, p_id,
                                   p_policy_regions, p_policy_hours, p_probe_key,
                                   p_probe_limit, p_shown_since) s;
      RETURN;
    EXCEPTION WHEN SQLSTATE 'QQ001' THEN
      NULL;
    END;
  END IF;
  IF NOT ('authorize' = ANY(p_kind)) THEN
    -- Settles and voids only: decided as a set (qinqing_resolve_set).
    RETURN QUERY
    SELECT s.op, s.code, s.payment_id, s.status, s.amount_fen, s.settled_fen,
           s.released_fen, s.expires_at, NULL::int, NULL::json, NULL::text, NULL::uuid,
           NULL::uuid, NULL::uuid, NULL::int, NULL::int
      FROM qinqing_resolve_set(p_client, p_region, p_now, p_kind, p_refused, p_id, p_amount) s;
    RETURN;
  END IF;
  FOR i IN 1..coalesce(array_length(p_kind, 1), 0) LOOP
    op := i - 1;
    code := NULL; payment_id := NULL; status := NULL; amount_fen := NULL;
    settled_fen := NULL; released_fen := NULL; expires_at := NULL;
    detail := NULL; probe_holder := NULL; probe_member := NULL; probe_link := NULL;
    probe_failures := NULL; retry_after := NULL;
    IF p_refused[i] IS NOT NULL THEN
      code := p_refused[i];
    ELSIF p_kind[i] = 'authorize' THEN
      SELECT * INTO a
        FROM qinqing_authorize_op(p_client, p_region, p_now, p_year, p_holder_ix[i],
                                  p_member_ix[i], p_amount[i], p_reference[i], p_id[i],
                                  p_policy_regions, p_policy_hours, p_probe_key,
                                  p_probe_limit, p_shown_since) x;
      code := a.code; payment_id := a.payment_id; status := a.status;
      amount_fen := a.amount_fen; settled_fen := a.settled_fen;
      released_fen := a.released_fen; expires_at := a.expires_at; detail := a.detail;
      probe_holder := a.probe_holder; probe_member := a.probe_member;
      probe_link := a.probe_link; probe_failures := a.probe_failures;
      retry_after := a.retry_after;
    ELSE
      SELECT * INTO r
        FROM qinqing_resolve_op(p_client, p_region, p_now, p_id[i],
                                CASE WHEN p_kind[i] = 'settle' THEN p_amount[i] END) x;
      code := r.code; payment_id := r.payment_id; status := r.status;
      amount_fen := r.amount_fen; settled_fen := r.settled_fen;
      released_fen := r.released_fen; expires_at := r.expires_at;
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

-- A batch of authorizations only, decided as a set: the same outcomes as
-- qinqing_authorize_op one after another, in a fixed number of statements.
-- Called by qinqing_payment_batch, which has locked the batch's links and accounts.
-- Everything the operations read is read at once (the persons, links, accounts,
-- the links' usage, the references taken, the vouchers shown, the probe counter);
-- the overdue holds of the accounts the operations reach are released first
-- (SKIP LOCKED, as alone); then each operation is decided in order against the
-- accounts' and links' running totals in memory (qinqing_authorize_refusal, as
-- qinqing_authorize_op), and the rows are written in one statement per table.
-- A reference another transaction took meanwhile, or a probe counter it made
-- meanwhile, raises QQ001: the caller then decides the batch one operation at a
-- time.
CREATE OR REPLACE FUNCTION qinqing_authorize_set(
  p_client text, p_region text, p_now timestamptz, p_year int,
  p_refused text[], p_holder_ix text[], p_member_ix text[], p_amount bigint[],
  p_reference text[], p_id uuid[], p_policy_regions text[], p_policy_hours int[],
  p_probe_key text, p_probe_limit int, p_shown_since timestamptz)
RETURNS TABLE (
  op int, code text, payment_id uuid, status text, amount_fen bigint,
  settled_fen bigint, released_fen bigint, expires_at timestamptz,
  detail text, probe_holder uuid, probe_member uuid, probe_link uuid,
  probe_failures int, retry_after int)
LANGUAGE plpgsql
-- Its statements join arrays whose length the planner cannot see, so their
-- estimates are far too high, which would start JIT compilation (70 ms a batch).
SET jit = off AS $$
#variable_conflict use_column
DECLARE
  n int := coalesce(array_length(p_refused, 1), 0);
  -- Per operation (from one read).
  o_h uuid[]; o_hr text[]; o_hs text[]; o_hsch text[]; o_m uuid[]; o_mr text[];
  o_vis boolean[]; o_l uuid[]; o_lr text[]; o_lim bigint[]; o_q boolean[];
  o_a int[]; o_k int[]; o_shown boolean[];
  -- Per account slot and per link slot.
  s_person uuid[]; s_id uuid[]; s_bal bigint[]; s_held bigint[]; s_rel bigint[];
  k_used bigint[];
  taken text[];
  -- The probe counter.
  t_found boolean; t_was boolean; t_fail int; t_start timestamptz; t_probed boolean := false;
  t_last timestamptz; t_locked timestamptz;
  -- Answers.
  r_code text[] := array_fill(NULL::text, ARRAY[n]);
  r_detail text[] := array_fill(NULL::text, ARRAY[n]);
  r_pfail int[] := array_fill(NULL::int, ARRAY[n]);
  r_retry int[] := array_fill(NULL::int, ARRAY[n]);
  r_exp timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
  r_win boolean[] := array_fill(false, ARRAY[n]);
  v_code text; v_retry int; v_hours int;
  v_written int;
  -- What was read (one array per column).
  v_ix text[]; n_ix text[]; n_person uuid[]; v_holders uuid[];
  w_id uuid[]; w_region text[]; w_status text[]; w_scheme text[];
  k_h uuid[]; k_m uuid[]; k_id uuid[]; k_region text[]; k_limit bigint[]; k_quota boolean[];
  c_person uuid[]; c_id uuid[]; c_kind text[]; c_link uuid[]; c_bal bigint[]; c_held bigint[];
  v_vh uuid[]; v_vm uuid[];
  v_reach int[]; v_cand_h uuid[]; v_cand_a uuid[]; v_rel bigint;
BEGIN
  IF n = 0 THEN RETURN; END IF;
  -- What the operations read, one table per statement, each by its distribution
  -- key (so a Citus coordinator runs each as shard-pruned queries): the numbers'
  -- rows, the persons, the holders' active links, their accounts and the vouchers
  -- shown to the client. Then the persons, the link and the account each operation
  -- reaches, as qinqing_authorize_op finds them (a link and an account only when
  -- visible), joined here in memory.
  v_ix := p_holder_ix || p_member_ix;
  SELECT array_agg(x.id_number_index), array_agg(x.person_id) INTO n_ix, n_person
    FROM person_id_numbers x WHERE x.id_number_index = ANY(v_ix);
  SELECT array_agg(x.id), array_agg(x.region_code), array_agg(x.status), array_agg(x.scheme)
    INTO w_id, w_region, w_status, w_scheme
    FROM persons x WHERE x.id = ANY(n_person);
  v_holders := ARRAY(SELECT DISTINCT x.p FROM unnest(n_ix, n_person) AS x(ix, p)
                      WHERE x.ix = ANY(p_holder_ix));
  SELECT array_agg(x.holder_id), array_agg(x.member_id), array_agg(x.id),
         array_agg(x.region_code), array_agg(x.mutual_aid_yearly_limit_fen),
         array_agg(coalesce(x.via_quota, false))
    INTO k_h, k_m, k_id, k_region, k_limit, k_quota
    FROM family_links x
   WHERE x.holder_id = ANY(v_holders) AND x.status = 'active' AND x.mutual_aid IS TRUE;
  SELECT array_agg(x.person_id), array_agg(x.id), array_agg(x.kind), array_agg(x.link_id),
         array_agg(x.balance_fen), array_agg(x.held_fen)
    INTO c_person, c_id, c_kind, c_link, c_bal, c_held
    FROM ledger_accounts x
   WHERE x.person_id = ANY(v_holders) AND x.kind IN ('personal', 'quota');
  SELECT array_agg(x.person_id), array_agg(x.subject_id) INTO v_vh, v_vm
    FROM vouchers x
   WHERE x.person_id = ANY(v_holders) AND x.subject_id = ANY(n_person)
     AND x.link_id IS NOT NULL AND x.claimed_by = p_client AND x.created_at > p_shown_since;
  WITH u AS (
    SELECT x.ord, x.f, x.hx, x.mx, x.amt
      FROM unnest(p_refused, p_holder_ix, p_member_ix, p_amount)
           WITH ORDINALITY AS x(f, hx, mx, amt, ord)
  ), num AS (
    SELECT * FROM unnest(n_ix, n_person) AS x(ix, p)
  ), per AS (
    SELECT * FROM unnest(w_id, w_region, w_status, w_scheme) AS x(id, r, s, sch)
  ), pp AS (
    SELECT u.*, hp.id AS h, hp.r AS hr, hp.s AS hs, hp.sch AS hsch,
           mp.id AS m, mp.r AS mr,
           (hp.id IS NOT NULL AND mp.id IS NOT NULL
            AND NOT (p_region IS DISTINCT FROM hp.r
                     AND p_region IS DISTINCT FROM mp.r)) AS vis
      FROM u
      LEFT JOIN num hn ON hn.ix = u.hx
      LEFT JOIN per hp ON hp.id = hn.p
      LEFT JOIN num mn ON mn.ix = u.mx
      LEFT JOIN per mp ON mp.id = mn.p
  ), pl AS (
    SELECT pp.*, l.id AS l, l.r AS lr, l.lim, coalesce(l.q, false) AS q
      FROM pp LEFT JOIN (
        SELECT DISTINCT ON (x.h, x.m) x.*
          FROM unnest(k_h, k_m, k_id, k_region, k_limit, k_quota) AS x(h, m, id, r, lim, q)
         ORDER BY x.h, x.m, x.id) l ON pp.vis AND l.h = pp.h AND l.m = pp.m
  ), acct AS (
    SELECT * FROM unnest(c_person, c_id, c_kind, c_link, c_bal, c_held)
                  AS x(person, id, kind, link, bal, held)
  ), pa AS (
    SELECT pl.*,
           CASE WHEN pl.q THEN aq.id ELSE ap.id END AS a,
           CASE WHEN pl.q THEN aq.bal ELSE ap.bal END AS bal,
           CASE WHEN pl.q THEN aq.held ELSE ap.held END AS held,
           EXISTS (SELECT 1 FROM unnest(v_vh, v_vm) AS v(h, m)
                    WHERE v.h = pl.h AND v.m = pl.m) AS shown
      FROM pl
      LEFT JOIN (SELECT DISTINCT ON (x.person) x.* FROM acct x WHERE x.kind = 'personal'
                  ORDER BY x.person, x.id) ap ON pl.vis AND NOT pl.q AND ap.person = pl.h
      LEFT JOIN (SELECT DISTINCT ON (x.person, x.link) x.* FROM acct x WHERE x.kind = 'quota'
                  ORDER BY x.person, x.link, x.id) aq
             ON pl.vis AND pl.q AND aq.person = pl.h AND aq.link = pl.l
  ), slotted AS (
    SELECT pa.*,
           -- Slot numbers 1..k among the operations that have one.
           CASE WHEN pa.a IS NOT NULL
                THEN dense_rank() OVER (PARTITION BY pa.a IS NULL ORDER BY pa.h, pa.a) END AS sa,
           CASE WHEN pa.l IS NOT NULL AND pa.lim IS NOT NULL
                THEN dense_rank() OVER (PARTITION BY pa.l IS NULL OR pa.lim IS NULL
                                        ORDER BY pa.h, pa.l) END AS sk
      FROM pa
  )
  SELECT array_agg(s.h ORDER BY s.ord), array_agg(s.hr ORDER BY s.ord),
         array_agg(s.hs ORDER BY s.ord), array_agg(s.hsch ORDER BY s.ord),
         array_agg(s.m ORDER BY s.ord), array_agg(s.mr ORDER BY s.ord),
         array_agg(s.vis ORDER BY s.ord), array_agg(s.l ORDER BY s.ord),
         array_agg(s.lr ORDER BY s.ord), array_agg(s.lim ORDER BY s.ord),
         array_agg(s.q ORDER BY s.ord), array_agg(s.sa::int ORDER BY s.ord),
         array_agg(s.sk::int ORDER BY s.ord), array_agg(s.shown ORDER BY s.ord),
         -- Slots: an account's person, id, balance, held; released below.
         (SELECT array_agg(z.h ORDER BY z.sa) FROM (SELECT DISTINCT t.sa, t.h FROM slotted t WHERE t.sa IS NOT NULL) z),
         (SELECT array_agg(z.a ORDER BY z.sa) FROM (SELECT DISTINCT t.sa, t.a FROM slotted t WHERE t.sa IS NOT NULL) z),
         (SELECT array_agg(z.bal ORDER BY z.sa) FROM (SELECT DISTINCT t.sa, t.bal FROM slotted t WHERE t.sa IS NOT NULL) z),
         (SELECT array_agg(z.held ORDER BY z.sa) FROM (SELECT DISTINCT t.sa, t.held FROM slotted t WHERE t.sa IS NOT NULL) z),
         -- The links' usage this year.
         (SELECT array_agg(qinqing_link_usage(z.h, z.l, p_year, p_now) ORDER BY z.sk)
            FROM (SELECT DISTINCT t.sk, t.h, t.l FROM slotted t WHERE t.sk IS NOT NULL) z)
    INTO o_h, o_hr, o_hs, o_hsch, o_m, o_mr, o_vis, o_l, o_lr, o_lim, o_q, o_a, o_k, o_shown,
         s_person, s_id, s_bal, s_held, k_used
    FROM slotted s;
  s_rel := array_fill(0::bigint, ARRAY[coalesce(array_length(s_id, 1), 0)]);

  -- The overdue holds of each account an operation reaches (one with a positive
  -- amount, visible persons, an account holding something), released once: read
  -- first (usually none), then each such account's released under its lock
  -- (qinqing_lock_payments, SKIP LOCKED, as alone).
  v_reach := ARRAY(SELECT DISTINCT o_a[i] FROM generate_series(1, n) AS i
                    WHERE p_refused[i] IS NULL AND p_amount[i] > 0 AND o_vis[i]
                      AND o_a[i] IS NOT NULL AND s_held[o_a[i]] > 0);
  IF cardinality(v_reach) > 0 THEN
    SELECT array_agg(DISTINCT x.holder_id), array_agg(DISTINCT x.account_id)
      INTO v_cand_h, v_cand_a
      FROM payments x
     WHERE x.holder_id = ANY(ARRAY(SELECT s_person[i] FROM unnest(v_reach) AS i))
       AND x.account_id = ANY(ARRAY(SELECT s_id[i] FROM unnest(v_reach) AS i))
       AND x.status = 'authorized' AND x.expires_at <= p_now;
    FOR i IN 1..coalesce(array_length(s_id, 1), 0) LOOP
      IF i = ANY(v_reach) AND s_person[i] = ANY(v_cand_h) AND s_id[i] = ANY(v_cand_a) THEN
        SELECT lk.released INTO v_rel
          FROM qinqing_lock_payments(s_person[i], s_id[i], NULL, p_now, true) lk;
        s_rel[i] := v_rel;
        s_held[i] := s_held[i] - v_rel;
      END IF;
    END LOOP;
  END IF;

  SELECT array_agg(r.reference) INTO taken FROM payment_references r
   WHERE r.client_id = p_client AND r.reference = ANY(p_reference);
  taken := coalesce(taken, '{}');
  SELECT true, t.failures, t.window_started_at, t.last_failure_at, t.locked_until
    INTO t_found, t_fail, t_start, t_last, t_locked
    FROM login_throttle t WHERE t.key = p_probe_key FOR NO KEY UPDATE;
  t_found := coalesce(t_found, false);
  t_was := t_found;

  FOR i IN 1..n LOOP
    v_code := NULL;
    IF p_refused[i] IS NOT NULL THEN
      r_code[i] := p_refused[i];
      CONTINUE;
    END IF;
    IF p_amount[i] <= 0 THEN r_code[i] := 'AMOUNT_INVALID'; CONTINUE; END IF;
    SELECT d.code, d.retry_after INTO v_code, v_retry
      FROM qinqing_authorize_refusal(
             p_now, p_region, p_amount[i], p_reference[i] = ANY(taken),
             CASE WHEN t_found THEN t_fail END, t_start, p_probe_limit, o_vis[i], o_l[i],
             o_hr[i], o_mr[i], o_hsch[i], o_hs[i], o_lim[i], k_used[o_k[i]],
             s_bal[o_a[i]] - s_held[o_a[i]], o_q[i]) d;
    r_retry[i] := v_retry;
    IF qinqing_about_the_persons(v_code)
       AND NOT (o_h[i] IS NOT NULL AND o_m[i] IS NOT NULL AND o_shown[i]) THEN
      r_detail[i] := v_code;
      v_code := 'MUTUAL_AID_UNAVAILABLE';
      IF NOT t_found THEN
        t_found := true; t_fail := 0; t_start := p_now; t_last := NULL; t_locked := NULL;
      END IF;
      IF p_now - t_start >= interval '1 hour' THEN
        t_fail := 0; t_start := p_now;
      END IF;
      t_fail := t_fail + 1;
      t_last := p_now;
      t_locked := CASE WHEN t_fail >= p_probe_limit THEN t_start + interval '1 hour' END;
      t_probed := true;
      r_pfail[i] := t_fail;
    END IF;
    IF v_code IS NULL THEN
      v_hours := p_policy_hours[array_position(p_policy_regions, o_lr[i])];
      IF v_hours IS NULL THEN
        v_code := 'REGION_NOT_FOUND';
      END IF;
    END IF;
    r_code[i] := v_code;
    IF v_code IS NULL THEN
      r_win[i] := true;
      r_exp[i] := p_now + make_interval(hours => v_hours);
      taken := taken || p_reference[i];
      s_held[o_a[i]] := s_held[o_a[i]] + p_amount[i];
      IF o_k[i] IS NOT NULL THEN
        k_used[o_k[i]] := k_used[o_k[i]] + p_amount[i];
      END IF;
    END IF;
  END LOOP;

  -- The winners' rows: the references first (one taken meanwhile: QQ001).
  INSERT INTO payment_references (client_id, reference, holder_id, payment_id)
  SELECT p_client, p_reference[i], o_h[i], p_id[i]
    FROM generate_series(1, n) AS i WHERE r_win[i]
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS v_written = ROW_COUNT;
  IF v_written < (SELECT count(*) FROM unnest(r_win) w WHERE w) THEN
    RAISE EXCEPTION 'a reference of the batch was taken meanwhile' USING ERRCODE = 'QQ001';
  END IF;
  INSERT INTO payment_keys (payment_id, holder_id, client_id)
  SELECT p_id[i], o_h[i], p_client FROM generate_series(1, n) AS i WHERE r_win[i];
  INSERT INTO payments (holder_id, id, client_id, reference, link_id, member_id,
                        account_id, amount_fen, settled_fen, status, year,
                        created_at, expires_at, resolved_at, cleared_at)
  SELECT o_h[i], p_id[i], p_client, p_reference[i], o_l[i], o_m[i], s_id[o_a[i]],
         p_amount[i], NULL, 'authorized', p_year, p_now, r_exp[i], NULL, NULL
    FROM generate_series(1, n) AS i WHERE r_win[i];
  UPDATE ledger_accounts la SET held_fen = c.held
    FROM (SELECT s_person[i] AS person, s_id[i] AS id, s_held[i] AS held
            FROM generate_series(1, coalesce(array_length(s_id, 1), 0)) AS i
           WHERE s_rel[i] > 0 OR EXISTS (
             SELECT 1 FROM generate_series(1, n) AS j WHERE r_win[j] AND o_a[j] = i)) c
   WHERE la.person_id = c.person AND la.id = c.id;
  IF t_probed AND t_was THEN
    UPDATE login_throttle t
       SET failures = t_fail, window_started_at = t_start, last_failure_at = t_last,
           locked_until = t_locked
     WHERE t.key = p_probe_key;
  ELSIF t_probed THEN
    -- No counter when the batch began, so none was locked: one another transaction
    -- made meanwhile has counts this batch did not see (QQ001: one at a time).
    INSERT INTO login_throttle (key, failures, window_started_at, last_failure_at, locked_until)
    VALUES (p_probe_key, t_fail, t_start, t_last, t_locked)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    IF v_written = 0 THEN
      RAISE EXCEPTION 'the probe counter was made meanwhile' USING ERRCODE = 'QQ001';
    END IF;
  END IF;

  RETURN QUERY
  SELECT (i - 1)::int, r_code[i],
         CASE WHEN r_win[i] THEN p_id[i] END,
         CASE WHEN r_win[i] THEN 'authorized' END,
         CASE WHEN r_win[i] THEN p_amount[i] END,
         NULL::bigint,
         CASE WHEN r_win[i] THEN 0::bigint END,
         r_exp[i], r_detail[i],
         CASE WHEN r_detail[i] IS NOT NULL THEN o_h[i] END,
         CASE WHEN r_detail[i] IS NOT NULL THEN o_m[i] END,
         CASE WHEN r_detail[i] IS NOT NULL THEN o_l[i] END,
         r_pfail[i], r_retry[i]
    FROM generate_series(1, n) AS i ORDER BY i;
END $$;

-- A batch of settles and voids only (an institution's settlement run), decided as
-- a set: the same outcomes as qinqing_resolve_op one after another, in a fixed
-- number of statements. Called by qinqing_payment_batch, which has locked the
-- accounts of the payments already. The targets and the overdue holds of those
-- accounts are locked (ascending, SKIP LOCKED: a target another transaction holds
-- is PAYMENT_ALREADY_RESOLVED, as alone); overdue holds expire first. Of the
-- operations on one payment, the first that passes (a void, or a settle of
-- 0 < amount <= the hold) resolves it; those before it are refused for their own
-- amount, those after it are PAYMENT_ALREADY_RESOLVED.
CREATE OR REPLACE FUNCTION qinqing_resolve_set(
  p_client text, p_region text, p_now timestamptz,
  p_kind text[], p_refused text[], p_id uuid[], p_amount bigint[])
RETURNS TABLE (
  op int, code text, payment_id uuid, status text, amount_fen bigint,
  settled_fen bigint, released_fen bigint, expires_at timestamptz)
LANGUAGE plpgsql
-- Its statements join arrays whose length the planner cannot see, so their
-- estimates are far too high, which would start JIT compilation (70 ms a batch).
SET jit = off AS $$
#variable_conflict use_column
DECLARE
  v_institution uuid;
  g record;
  v_t uuid[]; k_id uuid[]; k_h uuid[]; h_a uuid[];
  r record; v_one uuid; v_ids uuid[]; v_over uuid[] := '{}';
  -- The payments locked: holder, id, status, amount, account, expiry, overdue.
  x_h uuid[] := '{}'; x_id uuid[] := '{}'; x_s text[] := '{}'; x_amt bigint[] := '{}';
  x_a uuid[] := '{}'; x_exp timestamptz[] := '{}'; x_over boolean[] := '{}';
  -- The verdicts, per operation.
  d_verdict text[]; d_k text[]; d_pid uuid[]; d_holder uuid[]; d_account uuid[];
  d_hold bigint[]; d_amt bigint[]; d_exp timestamptz[]; d_transfer uuid[];
BEGIN
  IF 'settle' = ANY(p_kind) THEN
    SELECT s.id INTO v_institution FROM ledger_system_accounts s
     WHERE s.code = 'institution:' || p_client;
    IF v_institution IS NULL THEN
      INSERT INTO ledger_system_accounts (id, code, kind, region_code, balance_fen,
                                          allow_negative, created_at)
      VALUES (gen_random_uuid(), 'institution:' || p_client, 'institution',
              coalesce(p_region, ''), 0, false, p_now)
      ON CONFLICT DO NOTHING;
      SELECT s.id INTO v_institution FROM ledger_system_accounts s
       WHERE s.code = 'institution:' || p_client;
    END IF;
  END IF;
  -- The targets' holders (the key rows), then those of their accounts (locked by
  -- the caller) that hold something: only those can have an overdue hold.
  v_t := ARRAY(SELECT u.t FROM unnest(p_refused, p_id) AS u(f, t) WHERE u.f IS NULL);
  SELECT array_agg(pk.payment_id), array_agg(pk.holder_id) INTO k_id, k_h
    FROM payment_keys pk WHERE pk.payment_id = ANY(v_t) AND pk.client_id = p_client;
  SELECT array_agg(DISTINCT a.id) INTO h_a
    FROM unnest(k_h, k_id) AS w(h, i)
    JOIN payments p ON p.holder_id = w.h AND p.id = w.i
    JOIN ledger_accounts a ON a.person_id = p.holder_id AND a.id = p.account_id
   WHERE a.held_fen > 0;
  -- Lock the targets, then those accounts' other overdue holds, ascending, SKIP
  -- LOCKED (a target another transaction holds is PAYMENT_ALREADY_RESOLVED, as
  -- alone; nothing here waits, so the two statements need no common order), one
  -- group of holders at a time (qinqing_lock_groups). On Citus a locking statement
  -- may filter its distribution column once: the accounts are named by their
  -- unique ids, the targets by a join with their (holder, id) pairs.
  -- The other overdue holds of those accounts: read first (usually none), so only
  -- their holders take a second locking statement.
  IF cardinality(h_a) > 0 THEN
    SELECT coalesce(array_agg(DISTINCT p.holder_id), '{}') INTO v_over
      FROM payments p
     WHERE p.holder_id = ANY(k_h) AND p.account_id = ANY(h_a)
       AND p.status = 'authorized' AND p.expires_at <= p_now AND p.id <> ALL(k_id);
  END IF;
  FOR g IN SELECT * FROM qinqing_lock_groups(k_h) LOOP
    IF cardinality(g.holders) = 1 THEN
      -- One person (Citus): by equality and plain arrays, Citus's fast router path.
      v_one := g.holders[1];
      v_ids := ARRAY(SELECT x.id FROM unnest(k_h, k_id) AS x(h, id) WHERE x.h = v_one);
      FOR r IN SELECT p.holder_id, p.id, p.status, p.amount_fen, p.account_id, p.expires_at
                 FROM payments p
                WHERE p.holder_id = v_one AND p.id = ANY(v_ids)
                ORDER BY p.id FOR NO KEY UPDATE SKIP LOCKED LOOP
        x_h := x_h || r.holder_id; x_id := x_id || r.id; x_s := x_s || r.status;
        x_amt := x_amt || r.amount_fen; x_a := x_a || r.account_id;
        x_exp := x_exp || r.expires_at;
        x_over := x_over || (r.status = 'authorized' AND r.expires_at <= p_now);
      END LOOP;
      IF v_one = ANY(v_over) THEN
        FOR r IN SELECT p.holder_id, p.id, p.amount_fen, p.account_id, p.expires_at
                   FROM payments p
                  WHERE p.holder_id = v_one AND p.account_id = ANY(h_a)
                    AND p.status = 'authorized' AND p.expires_at <= p_now
                    AND p.id <> ALL(k_id)
                  ORDER BY p.id FOR NO KEY UPDATE SKIP LOCKED LOOP
          x_h := x_h || r.holder_id; x_id := x_id || r.id; x_s := x_s || 'authorized'::text;
          x_amt := x_amt || r.amount_fen; x_a := x_a || r.account_id;
          x_exp := x_exp || r.expires_at; x_over := x_over || true;
        END LOOP;
      END IF;
      CONTINUE;
    END IF;
    WITH l AS (
      SELECT p.holder_id, p.id, p.status, p.amount_fen, p.account_id, p.expires_at
        FROM payments p
       WHERE p.holder_id = ANY(g.holders)
         AND (p.holder_id, p.id) IN (SELECT * FROM unnest(k_h, k_id))
       ORDER BY p.holder_id, p.id
         FOR NO KEY UPDATE SKIP LOCKED)
    SELECT x_h || array_agg(l.holder_id), x_id || array_agg(l.id), x_s || array_agg(l.status),
           x_amt || array_agg(l.amount_fen), x_a || array_agg(l.account_id),
           x_exp || array_agg(l.expires_at),
           x_over || array_agg(l.status = 'authorized' AND l.expires_at <= p_now)
      INTO x_h, x_id, x_s, x_amt, x_a, x_exp, x_over
      FROM l;
    IF cardinality(v_over) > 0 THEN
      WITH l AS (
        SELECT p.holder_id, p.id, p.amount_fen, p.account_id, p.expires_at
          FROM payments p
         WHERE p.holder_id = ANY(g.holders) AND p.holder_id = ANY(v_over)
           AND p.account_id = ANY(h_a)
           AND p.status = 'authorized' AND p.expires_at <= p_now AND p.id <> ALL(k_id)
         ORDER BY p.holder_id, p.id
           FOR NO KEY UPDATE SKIP LOCKED)
      SELECT x_h || array_agg(l.holder_id), x_id || array_agg(l.id),
             x_s || array_agg('authorized'::text), x_amt || array_agg(l.amount_fen),
             x_a || array_agg(l.account_id), x_exp || array_agg(l.expires_at),
             x_over || array_agg(true)
        INTO x_h, x_id, x_s, x_amt, x_a, x_exp, x_over
        FROM l;
    END IF;
  END LOOP;
  -- Of the operations on one payment, the first that passes (a void, or a settle
  -- of 0 < amount <= the hold) resolves it.
  WITH ops AS (
    SELECT (u.ord - 1)::int AS op, u.k, u.f, u.t AS pid, u.amt, pk.h AS holder
      FROM unnest(p_kind, p_refused, p_id, p_amount) WITH ORDINALITY AS u(k, f, t, amt, ord)
      LEFT JOIN unnest(k_id, k_h) AS pk(id, h) ON u.f IS NULL AND pk.id = u.t
  ), locked AS (
    SELECT * FROM unnest(x_h, x_id, x_s, x_amt, x_a, x_exp, x_over)
                  AS x(holder_id, id, status, amount_fen, account_id, expires_at, overdue)
  ), judged AS (
    SELECT o.op, o.k, o.f, o.pid, o.amt, o.holder, l.id IS NOT NULL AS here,
           CASE WHEN l.overdue THEN 'expired' ELSE l.status END AS s0,
           l.amount_fen AS hold, l.account_id, l.expires_at,
           (o.k = 'void' OR (o.amt > 0 AND o.amt <= l.amount_fen)) AS passes
      FROM ops o LEFT JOIN locked l ON l.holder_id = o.holder AND l.id = o.pid
  ), won AS (
    SELECT j.*,
           min(j.op) FILTER (WHERE j.f IS NULL AND j.here AND j.s0 = 'authorized' AND j.passes)
             OVER (PARTITION BY j.holder, j.pid) AS win
      FROM judged j
  ), decided AS (
    SELECT w.*,
           CASE
             WHEN w.f IS NOT NULL THEN w.f
             WHEN w.holder IS NULL THEN 'PAYMENT_NOT_FOUND'
             WHEN NOT w.here THEN 'PAYMENT_ALREADY_RESOLVED'
             WHEN w.s0 = 'expired' THEN 'PAYMENT_EXPIRED'
             WHEN w.s0 <> 'authorized' THEN 'PAYMENT_ALREADY_RESOLVED'
             WHEN w.op > w.win THEN 'PAYMENT_ALREADY_RESOLVED'
             WHEN w.op = w.win THEN NULL
             WHEN w.k = 'settle' AND w.amt <= 0 THEN 'AMOUNT_INVALID'
             ELSE 'SETTLE_EXCEEDS_HOLD'
           END AS verdict
      FROM won w
  )
  SELECT array_agg(d.verdict ORDER BY d.op), array_agg(d.k ORDER BY d.op),
         array_agg(d.pid ORDER BY d.op), array_agg(d.holder ORDER BY d.op),
         array_agg(d.account_id ORDER BY d.op), array_agg(d.hold ORDER BY d.op),
         array_agg(d.amt ORDER BY d.op), array_agg(d.expires_at ORDER BY d.op),
         array_agg(CASE WHEN d.verdict IS NULL AND d.k = 'settle' THEN gen_random_uuid() END
                   ORDER BY d.op)
    INTO d_verdict, d_k, d_pid, d_holder, d_account, d_hold, d_amt, d_exp, d_transfer
    FROM decided d;

  -- The writes, one statement per table: the winners resolved and the overdue
  -- holds expired; each settle's transfer and its two entries; the accounts.
  UPDATE payments p
     SET status = c.new_status, settled_fen = c.settle, resolved_at = p_now
    FROM (SELECT d_holder[i] AS holder, d_pid[i] AS pid,
                 CASE WHEN d_k[i] = 'settle' THEN 'settled' ELSE 'voided' END AS new_status,
                 CASE WHEN d_k[i] = 'settle' THEN d_amt[i] END AS settle
            FROM generate_subscripts(d_verdict, 1) AS i WHERE d_verdict[i] IS NULL
          UNION ALL
          SELECT x_h[i], x_id[i], 'expired', NULL
            FROM generate_subscripts(x_id, 1) AS i WHERE x_over[i]) c
   WHERE p.holder_id = c.holder AND p.id = c.pid;
  INSERT INTO ledger_transfers (person_id, id, debit_account_id, credit_account_id,
                                amount_fen, kind, payment_id, contribution_id, created_at)
  SELECT d_holder[i], d_transfer[i], d_account[i], v_institution, d_amt[i], 'payment',
         d_pid[i], NULL, p_now
    FROM generate_subscripts(d_verdict, 1) AS i WHERE d_transfer[i] IS NOT NULL;
  INSERT INTO ledger_entries (person_id, id, transfer_id, account_id, amount_fen, created_at)
  SELECT d_holder[i], gen_random_uuid(), d_transfer[i], e.account_id, e.amount_fen, p_now
    FROM generate_subscripts(d_verdict, 1) AS i
   CROSS JOIN LATERAL (VALUES (d_account[i], -d_amt[i]), (v_institution, d_amt[i]))
         AS e(account_id, amount_fen)
   WHERE d_transfer[i] IS NOT NULL;
  UPDATE ledger_accounts a
     SET held_fen = a.held_fen - c.released, balance_fen = a.balance_fen - c.paid
    FROM (SELECT x.holder, x.account_id, sum(x.released) AS released, sum(x.paid) AS paid
            FROM (SELECT d_holder[i] AS holder, d_account[i] AS account_id,
                         d_hold[i] AS released,
                         CASE WHEN d_k[i] = 'settle' THEN d_amt[i] ELSE 0 END AS paid
                    FROM generate_subscripts(d_verdict, 1) AS i WHERE d_verdict[i] IS NULL
                  UNION ALL
                  SELECT x_h[i], x_a[i], x_amt[i], 0
                    FROM generate_subscripts(x_id, 1) AS i WHERE x_over[i]) x
           GROUP BY x.holder, x.account_id) c
   WHERE a.person_id = c.holder AND a.id = c.account_id;

  RETURN QUERY
  SELECT (i - 1)::int, d_verdict[i],
         CASE WHEN d_verdict[i] IS NULL THEN d_pid[i] END,
         CASE WHEN d_verdict[i] IS NULL THEN
           CASE WHEN d_k[i] = 'settle' THEN 'settled' ELSE 'voided' END END,
         CASE WHEN d_verdict[i] IS NULL THEN d_hold[i] END,
         CASE WHEN d_verdict[i] IS NULL AND d_k[i] = 'settle' THEN d_amt[i] END,
         CASE WHEN d_verdict[i] IS NULL THEN
           CASE WHEN d_k[i] = 'settle' THEN d_hold[i] - d_amt[i] ELSE d_hold[i] END END,
         CASE WHEN d_verdict[i] IS NULL THEN d_exp[i] END
    FROM generate_subscripts(d_verdict, 1) AS i ORDER BY i;
END $$;
