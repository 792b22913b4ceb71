-- The orders workload's schema and data: an online shop's customers and items, and the orders
-- and order lines the workload (orders.pgbench) adds. 100,000 customers, 10,000 items.
DROP TABLE IF EXISTS shop_order_lines;
DROP TABLE IF EXISTS shop_orders;
DROP TABLE IF EXISTS shop_items;
DROP TABLE IF EXISTS shop_customers;
CREATE TABLE shop_customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    balance numeric(12, 2) NOT NULL
);
CREATE TABLE shop_items (
    id int PRIMARY KEY,
    name text NOT NULL,
    price numeric(10, 2) NOT NULL,
    stock int NOT NULL
);
CREATE TABLE shop_orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now(),
    line_count int NOT NULL
);
CREATE TABLE shop_order_lines (
    order_id bigint NOT NULL,
    line_no int NOT NULL,
    item_id int NOT NULL,
    quantity int NOT NULL,
    price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
INSERT INTO shop_items
    SELECT g, 'item ' || g, (g % 100) + 0.99, 1000000 FROM generate_series(1, 10000) g;
INSERT INTO shop_customers
    SELECT g, 'customer ' || g, 'customer' || g || '@example.com', 100
    FROM generate_series(1, 100000) g;
