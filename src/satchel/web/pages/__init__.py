from satchel.web.pages.routes import routes

__all__ = ["routes"]
