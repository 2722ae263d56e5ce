CREATE USER identity WITH PASSWORD 'identity';
CREATE DATABASE identity OWNER identity;
CREATE USER orders WITH PASSWORD 'orders';
CREATE DATABASE orders OWNER orders;
