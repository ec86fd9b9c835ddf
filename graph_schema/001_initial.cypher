// The core graph: memories linked to the customers, orders, tickets, sessions and
// other entities they are about. Every node carries agent_id (the tenant); node keys of
// shared kinds are "<agent_id>|<key>" so two agents never share a node.

CREATE NODE TABLE IF NOT EXISTS Meta(key STRING, value STRING, PRIMARY KEY (key));

CREATE NODE TABLE IF NOT EXISTS Memory(
    id STRING,
    agent_id STRING,
    content STRING,
    importance DOUBLE,
    tags STRING[],
    memory_type STRING,
    metadata STRING,
    entities STRING,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    expires_at TIMESTAMP,
    session_id STRING,
    customer_id STRING,
    access_count INT64,
    embedding FLOAT[],
    PRIMARY KEY (id)
);

CREATE NODE TABLE IF NOT EXISTS Customer(
    uid STRING, agent_id STRING, id STRING, name STRING, created_at TIMESTAMP,
    PRIMARY KEY (uid)
);

CREATE NODE TABLE IF NOT EXISTS `Order`(
    uid STRING, agent_id STRING, id STRING, created_at TIMESTAMP,
    PRIMARY KEY (uid)
);

CREATE NODE TABLE IF NOT EXISTS Ticket(
    uid STRING, agent_id STRING, id STRING, status STRING, subject STRING, channel STRING,
    created_at TIMESTAMP, updated_at TIMESTAMP,
    PRIMARY KEY (uid)
);

CREATE NODE TABLE IF NOT EXISTS Session(
    id STRING, agent_id STRING, customer_id STRING, started_at TIMESTAMP,
    ended_at TIMESTAMP, summary STRING, metadata STRING,
    PRIMARY KEY (id)
);

CREATE NODE TABLE IF NOT EXISTS Entity(
    uid STRING, agent_id STRING, kind STRING, key STRING, value STRING,
    PRIMARY KEY (uid)
);

CREATE REL TABLE IF NOT EXISTS ABOUT(FROM Memory TO Customer);
CREATE REL TABLE IF NOT EXISTS MENTIONS(FROM Memory TO `Order`, FROM Memory TO Ticket, FROM Memory TO Entity);
CREATE REL TABLE IF NOT EXISTS IN_SESSION(FROM Memory TO Session);
CREATE REL TABLE IF NOT EXISTS PLACED(FROM Customer TO `Order`);
CREATE REL TABLE IF NOT EXISTS RAISED(FROM Customer TO Ticket);
CREATE REL TABLE IF NOT EXISTS HAD_SESSION(FROM Customer TO Session);
CREATE REL TABLE IF NOT EXISTS CONCERNS(FROM Ticket TO `Order`);
