from satchel.web.apiv2.routes import routes

__all__ = ["routes"]
