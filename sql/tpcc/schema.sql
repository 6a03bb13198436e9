-- The TPC-C schema (TPC-C specification 5.11, clause 1.3), in SQL any PostgreSQL-wire database
-- should accept: VARCHAR rather than CHAR(n), TIMESTAMP for dates, NUMERIC for money and rates,
-- composite primary keys, plain secondary indexes. No foreign keys: the workload keeps the
-- references consistent itself, and `meridian workload tpcc check` verifies them.
--
-- ORDER is a reserved word, so the order table is `oorder`. HISTORY has no primary key in the
-- specification and none here (a database that needs one supplies a hidden row id).
--
-- `meridian workload tpcc init` runs each statement below separately (split at semicolons at the
-- end of a line), after dropping the nine tables.

CREATE TABLE warehouse (
    w_id       INT NOT NULL,
    w_name     VARCHAR(10),
    w_street_1 VARCHAR(20),
    w_street_2 VARCHAR(20),
    w_city     VARCHAR(20),
    w_state    VARCHAR(2),
    w_zip      VARCHAR(9),
    w_tax      NUMERIC(4, 4),
    w_ytd      NUMERIC(12, 2),
    PRIMARY KEY (w_id)
);

CREATE TABLE district (
    d_id        INT NOT NULL,
    d_w_id      INT NOT NULL,
    d_name      VARCHAR(10),
    d_street_1  VARCHAR(20),
    d_street_2  VARCHAR(20),
    d_city      VARCHAR(20),
    d_state     VARCHAR(2),
    d_zip       VARCHAR(9),
    d_tax       NUMERIC(4, 4),
    d_ytd       NUMERIC(12, 2),
    d_next_o_id INT,
    PRIMARY KEY (d_w_id, d_id)
);

CREATE TABLE customer (
    c_id           INT NOT NULL,
    c_d_id         INT NOT NULL,
    c_w_id         INT NOT NULL,
    c_first        VARCHAR(16),
    c_middle       VARCHAR(2),
    c_last         VARCHAR(16),
    c_street_1     VARCHAR(20),
    c_street_2     VARCHAR(20),
    c_city         VARCHAR(20),
    c_state        VARCHAR(2),
    c_zip          VARCHAR(9),
    c_phone        VARCHAR(16),
    c_since        TIMESTAMP,
    c_credit       VARCHAR(2),
    c_credit_lim   NUMERIC(12, 2),
    c_discount     NUMERIC(4, 4),
    c_balance      NUMERIC(12, 2),
    c_ytd_payment  NUMERIC(12, 2),
    c_payment_cnt  INT,
    c_delivery_cnt INT,
    c_data         VARCHAR(500),
    PRIMARY KEY (c_w_id, c_d_id, c_id)
);

-- Payment and Order-Status find customers by last name in 60% of cases.
CREATE INDEX customer_idx ON customer (c_w_id, c_d_id, c_last, c_first);

CREATE TABLE history (
    h_c_id   INT,
    h_c_d_id INT,
    h_c_w_id INT,
    h_d_id   INT,
    h_w_id   INT,
    h_date   TIMESTAMP,
    h_amount NUMERIC(6, 2),
    h_data   VARCHAR(24)
);

CREATE TABLE oorder (
    o_id         INT NOT NULL,
    o_d_id       INT NOT NULL,
    o_w_id       INT NOT NULL,
    o_c_id       INT,
    o_entry_d    TIMESTAMP,
    o_carrier_id INT,
    o_ol_cnt     INT,
    o_all_local  INT,
    PRIMARY KEY (o_w_id, o_d_id, o_id)
);

-- Order-Status reads a customer's most recent order.
CREATE INDEX oorder_idx ON oorder (o_w_id, o_d_id, o_c_id, o_id);

CREATE TABLE new_order (
    no_o_id INT NOT NULL,
    no_d_id INT NOT NULL,
    no_w_id INT NOT NULL,
    PRIMARY KEY (no_w_id, no_d_id, no_o_id)
);

CREATE TABLE order_line (
    ol_o_id        INT NOT NULL,
    ol_d_id        INT NOT NULL,
    ol_w_id        INT NOT NULL,
    ol_number      INT NOT NULL,
    ol_i_id        INT,
    ol_supply_w_id INT,
    ol_delivery_d  TIMESTAMP,
    ol_quantity    INT,
    ol_amount      NUMERIC(6, 2),
    ol_dist_info   VARCHAR(24),
    PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number)
);

CREATE TABLE item (
    i_id    INT NOT NULL,
    i_im_id INT,
    i_name  VARCHAR(24),
    i_price NUMERIC(5, 2),
    i_data  VARCHAR(50),
    PRIMARY KEY (i_id)
);

CREATE TABLE stock (
    s_i_id       INT NOT NULL,
    s_w_id       INT NOT NULL,
    s_quantity   INT,
    s_dist_01    VARCHAR(24),
    s_dist_02    VARCHAR(24),
    s_dist_03    VARCHAR(24),
    s_dist_04    VARCHAR(24),
    s_dist_05    VARCHAR(24),
    s_dist_06    VARCHAR(24),
    s_dist_07    VARCHAR(24),
    s_dist_08    VARCHAR(24),
    s_dist_09    VARCHAR(24),
    s_dist_10    VARCHAR(24),
    s_ytd        INT,
    s_order_cnt  INT,
    s_remote_cnt INT,
    s_data       VARCHAR(50),
    PRIMARY KEY (s_w_id, s_i_id)
);
