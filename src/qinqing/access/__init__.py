"""Who is calling and what they may do: the ``Principal`` value and the role checks
that the API, the web pages and the services all call. Below every domain and the
HTTP layer; imports only the kit and the audit actor."""
