from twisted.application.service import ServiceMaker

chatd = ServiceMaker("chatd", "chatdaemon.tap", "A chat daemon speaking five client dialects on one core.", "chatd")
