from satchel.web.apiv1.routes import routes

__all__ = ["routes"]
