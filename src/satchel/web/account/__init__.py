from satchel.web.account.routes import routes

__all__ = ["routes"]
