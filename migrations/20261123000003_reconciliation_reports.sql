-- Reconciliation reports: what each run found, kept as history for operators.

CREATE TABLE reconciliation_reports (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    sale_id       BIGINT UNSIGNED NOT NULL,
    created_at    DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    -- True when every check of every item passed.
    ok            BOOLEAN         NOT NULL,
    discrepancies INT UNSIGNED    NOT NULL,
    -- Ledger entries re-emitted to Kafka by a repair run.
    repaired      INT UNSIGNED    NOT NULL DEFAULT 0,
    -- The whole report (per-item figures, checks, sample ids) as the API returns it.
    report        LONGTEXT        NOT NULL,
    PRIMARY KEY (id),
    -- "Latest and history of a sale" reads newest first.
    KEY idx_reports_sale_created (sale_id, created_at)
) ENGINE = InnoDB;
