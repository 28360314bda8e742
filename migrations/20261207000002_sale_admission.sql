-- A sale's admission policy as JSON: {"mode": "open"} (anyone may buy in the window) or a
-- waiting room's settings ({"mode": "queue", "admit_per_sec": ..., ...}).
ALTER TABLE sales ADD COLUMN admission TEXT NOT NULL DEFAULT '{"mode":"open","admit_per_sec":100,"max_active":1000,"admission_ttl_secs":120,"queue_opens_at":null,"pow_bits":0,"overbooking":1.5}';
