"""Who may see and change which orders: scopes and ownership."""

from dataclasses import dataclass

from orders.domain.orders import Order

READ = "orders:read"
WRITE = "orders:write"
ADMIN = "orders:admin"


@dataclass(frozen=True)
class Caller:
    """The subject a request acts for, and the scopes its token grants.

    For a client-credentials token the subject is the client's own id, so a
    back-office client owns the orders it creates like any user.
    """

    subject: str
    scopes: frozenset[str]

    @property
    def administrator(self) -> bool:
        """``orders:admin`` reads and changes every order."""
        return ADMIN in self.scopes

    def sees(self, order: Order) -> bool:
        return self.administrator or order.owner == self.subject
