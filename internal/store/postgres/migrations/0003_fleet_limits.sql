-- 0003_fleet_limits: the speed profile's limits for a whole fleet of
-- workers (internal/fleet). Rows here are short-lived coordination state,
-- never a record of what was sent.

-- fleet_slots are the connection slots of a running campaign: domain ''
-- holds the profile's total connections, a recipient domain its
-- per-domain connections. A slot is held by one owner until lease_until;
-- its owner renews the lease while it holds the slot and deletes the row
-- when it gives the slot back, so a dead worker's slots are free again
-- once their lease has passed. The primary key makes the count exact: two
-- workers can never hold the same slot number.
CREATE TABLE fleet_slots (
	campaign_id BIGINT      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	domain      TEXT        NOT NULL,
	slot        INTEGER     NOT NULL,
	owner       TEXT        NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (campaign_id, domain, slot)
);

CREATE INDEX fleet_slots_owner ON fleet_slots (owner, campaign_id);

-- fleet_rates are the rate buckets of a running campaign: domain '' is the
-- profile's global rate, a recipient domain its per-domain rate. tat is the
-- time at which the next message may start (the "theoretical arrival
-- time" of a virtual-scheduling token bucket without burst): taking n
-- starts moves it on by n / rate, so the starts handed out to the whole
-- fleet are spaced by 1 / rate. slow_per_sec > 0 is a slow-down after a
-- rate-limited answer, held until cool_until and then doubled once per
-- cool-down until it reaches the profile's rate again.
CREATE TABLE fleet_rates (
	campaign_id  BIGINT           NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	domain       TEXT             NOT NULL,
	tat          TIMESTAMPTZ      NOT NULL,
	slow_per_sec DOUBLE PRECISION NOT NULL DEFAULT 0,
	cool_until   TIMESTAMPTZ      NOT NULL DEFAULT '-infinity',
	PRIMARY KEY (campaign_id, domain)
);

-- fleet_rate_now is the rate in messages per second of a bucket row at t
-- (0: unlimited), after any recovery from a slow-down: the profile's rate
-- base (0: unlimited); a slowed domain without a rate of its own recovers
-- up to ceiling.
CREATE FUNCTION fleet_rate_now(r fleet_rates, t TIMESTAMPTZ, base DOUBLE PRECISION,
	ceiling DOUBLE PRECISION, cooldown DOUBLE PRECISION) RETURNS DOUBLE PRECISION
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	eff DOUBLE PRECISION;
	top DOUBLE PRECISION := CASE WHEN base > 0 THEN base ELSE ceiling END;
BEGIN
	IF r.slow_per_sec <= 0 THEN
		RETURN base;
	END IF;
	IF t < r.cool_until THEN
		RETURN r.slow_per_sec;
	END IF;
	eff := r.slow_per_sec * power(2, floor(extract(epoch FROM t - r.cool_until) / cooldown) + 1);
	IF eff >= top THEN
		RETURN base;
	END IF;
	RETURN eff;
END $$;

-- fleet_take reserves chunk seconds' worth of a bucket's starts at its
-- current rate (at least one) and returns how many (n), when the first may
-- start (delay, seconds from now, 0 or more) and the rate they are spaced
-- at (per_sec; 0: unlimited, nothing was reserved). One call is one round
-- trip.
CREATE FUNCTION fleet_take(p_campaign BIGINT, p_domain TEXT, chunk DOUBLE PRECISION, base DOUBLE PRECISION,
	ceiling DOUBLE PRECISION, cooldown DOUBLE PRECISION,
	OUT delay DOUBLE PRECISION, OUT per_sec DOUBLE PRECISION, OUT n INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
	r fleet_rates;
	t TIMESTAMPTZ;
	start TIMESTAMPTZ;
BEGIN
	INSERT INTO fleet_rates (campaign_id, domain, tat) VALUES (p_campaign, p_domain, '-infinity')
	ON CONFLICT DO NOTHING;
	SELECT * INTO r FROM fleet_rates WHERE campaign_id = p_campaign AND domain = p_domain FOR UPDATE;
	t := clock_timestamp(); -- after the row lock: the time the starts are counted from
	per_sec := fleet_rate_now(r, t, base, ceiling, cooldown);
	IF r.slow_per_sec > 0 AND (per_sec = base) AND t >= r.cool_until THEN
		UPDATE fleet_rates SET slow_per_sec = 0 WHERE campaign_id = p_campaign AND domain = p_domain;
	END IF;
	IF per_sec <= 0 THEN
		delay := 0;
		n := 0;
		RETURN;
	END IF;
	n := greatest(1, floor(per_sec * chunk)::INTEGER);
	start := greatest(r.tat, t);
	UPDATE fleet_rates SET tat = start + make_interval(secs => n / per_sec)
	WHERE campaign_id = p_campaign AND domain = p_domain;
	delay := extract(epoch FROM start - t);
END $$;

-- fleet_slow_down halves a bucket's current rate (floor: lowest) for
-- cooldown seconds after a rate-limited answer, for every worker, and
-- makes the next start wait one interval at the new rate (the answer just
-- received was the last message for a while). It returns the new rate.
CREATE FUNCTION fleet_slow_down(p_campaign BIGINT, p_domain TEXT, base DOUBLE PRECISION,
	ceiling DOUBLE PRECISION, cooldown DOUBLE PRECISION, lowest DOUBLE PRECISION)
RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
	r fleet_rates;
	t TIMESTAMPTZ;
	cur DOUBLE PRECISION;
	slowed DOUBLE PRECISION;
BEGIN
	INSERT INTO fleet_rates (campaign_id, domain, tat) VALUES (p_campaign, p_domain, '-infinity')
	ON CONFLICT DO NOTHING;
	SELECT * INTO r FROM fleet_rates WHERE campaign_id = p_campaign AND domain = p_domain FOR UPDATE;
	t := clock_timestamp();
	cur := fleet_rate_now(r, t, base, ceiling, cooldown);
	IF cur <= 0 THEN
		cur := ceiling;
	END IF;
	slowed := greatest(cur / 2, lowest);
	UPDATE fleet_rates SET slow_per_sec = slowed,
		cool_until = t + make_interval(secs => cooldown),
		tat = greatest(tat, t + make_interval(secs => 1 / slowed))
	WHERE campaign_id = p_campaign AND domain = p_domain;
	RETURN slowed;
END $$;
