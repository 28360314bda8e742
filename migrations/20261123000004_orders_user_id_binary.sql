-- User ids are opaque strings from the login system: "Bob", "bob" and "bób" are three users.
-- Under a case- or accent-insensitive default collation (MySQL 8's utf8mb4_0900_ai_ci) they
-- would compare equal, and the consumer's per-user totals would merge them into one buyer.
-- utf8mb4 also makes any id the API accepts storable whatever the server's default charset.
ALTER TABLE orders
    MODIFY user_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
