from satchel.web.public.routes import routes

__all__ = ["routes"]
