"""The agency counter (经办机构窗口): look-up, unbind and bind on a person's behalf, receipt."""
