-- Up Migration
-- The fleet's pulse: the newest beat any liveness replica answered. Every
-- replica raises it on each flush tick (one row, only ever moved forward), so
-- the sweeper, whichever replica it runs in, knows whether beats are arriving
-- at all, not only at itself.
CREATE TABLE fleet_pulse (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_beat_at timestamptz NOT NULL
);

-- What the sweeper remembers between sweeps, whichever replica holds the sweep
-- lock next: since when the whole fleet has been silent (our outage: no sweeps,
-- and the warning is logged once), and until when the fleet is given grace
-- after beats resumed.
CREATE TABLE sweep_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  silent_since timestamptz NULL,
  hold_until timestamptz NULL
);
INSERT INTO sweep_state DEFAULT VALUES;
